"""Stand-ins for the external services the bot talks to (Bot API, payment
and payout providers): local HTTP servers on free loopback ports that answer
with the real services' response shapes and record what they received."""
