"""redis-cli 7.0 against the server: commands fed on stdin (as a user would
type them), arguments, --scan, --pipe, --bigkeys, --memkeys, -3."""
import re

from conftest import encode_command

TYPED = ('SET a 1\n'
         'GET a\n'
         'INCR a\n'
         'GET nokey\n'
         'MGET a nokey\n'
         'FOO bar\n'
         'SET "sp ace" "x y"\n'
         'GET "sp ace"\n'
         'EXISTS a nokey\n')


def test_stdin_commands_raw_output(server, r):
    p = server.cli(input=TYPED)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("OK\n1\n2\n\n2\n\nERR unknown command 'FOO', with args beginning with: 'bar' \n\n"
                        "OK\nx y\n1\n")
    assert r.get("sp ace") == b"x y"


def test_stdin_commands_formatted_output(server, r):
    p = server.cli("--no-raw", input=TYPED)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n") == [
        "OK", '"1"', "(integer) 2", "(nil)", '1) "2"', "2) (nil)",
        "(error) ERR unknown command 'FOO', with args beginning with: 'bar' ",
        "OK", '"x y"', "(integer) 1", ""]


def test_command_as_arguments(server, r):
    assert server.cli("SET", "argkey", "hello world").stdout == "OK\n"
    assert server.cli("GET", "argkey").stdout == "hello world\n"
    assert server.cli("--no-raw", "GET", "argkey").stdout == '"hello world"\n'
    assert server.cli("--no-raw", "TTL", "argkey").stdout == "(integer) -1\n"
    assert server.cli("--no-raw", "KEYS", "nomatch*").stdout == "(empty array)\n"
    assert server.cli("-r", "3", "INCR", "ctr").stdout == "1\n2\n3\n"
    assert server.cli("-n", "4", "SET", "indb4", "x").stdout == "OK\n"
    assert r.exists("indb4") == 0
    assert server.client(db=4).get("indb4") == b"x"
    p = server.cli("INFO", "server")
    assert p.returncode == 0 and "redis_version:" in p.stdout and "# Server" in p.stdout
    assert server.cli("PING").stdout == "PONG\n"
    assert server.cli("DBSIZE").stdout == "%d\n" % r.dbsize()


def test_binary_value_escaped(server, r):
    r.set("bin", b"a\x00b\xff\n")
    assert server.cli("--no-raw", "GET", "bin").stdout == '"a\\x00b\\xff\\n"\n'
    assert server.cli("--raw", "GET", "bin", input=b"").stdout == b"a\x00b\xff\n\n"


def test_auth_option(make_server):
    srv = make_server(requirepass="clipw")
    p = srv.cli("GET", "k")
    assert "NOAUTH Authentication required." in p.stdout
    p = srv.cli("-a", "clipw", "--no-auth-warning", "SET", "k", "v")
    assert p.stdout == "OK\n" and p.returncode == 0
    p = srv.cli("-a", "wrong", "--no-auth-warning", "GET", "k")
    assert "AUTH failed: WRONGPASS invalid username-password pair or user is disabled." in p.stdout + p.stderr


def test_scan_pattern(server, r):
    p = r.pipeline(transaction=False)
    for i in range(2000):
        p.set("user:%d" % i, i)
    for i in range(500):
        p.set("session:%d" % i, i)
    p.execute()
    out = server.cli("--scan", "--pattern", "user:*", timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")[:-1]
    assert set(lines) == {"user:%d" % i for i in range(2000)}
    assert len(lines) >= 2000
    out = server.cli("--scan", timeout=60)
    assert len(set(out.stdout.split("\n")[:-1])) == 2500
    out = server.cli("--scan", "--quoted-pattern", '"session:1?"', timeout=60)
    assert set(out.stdout.split("\n")[:-1]) == {"session:1%d" % i for i in range(10)}
    out = server.cli("--scan", "--pattern", "nomatch:*")
    assert out.returncode == 0 and out.stdout == ""


def test_pipe_100k(server, r):
    n = 100_000
    data = b"".join(encode_command("SET", "pipe:%d" % i, "value-%d" % i) for i in range(n))
    p = server.cli("--pipe", input=data, timeout=120)
    out = p.stdout.decode()
    assert p.returncode == 0, (out, p.stderr)
    assert "All data transferred" in out
    assert "errors: 0, replies: %d" % n in out, out
    assert r.dbsize() == n
    assert r.get("pipe:0") == b"value-0" and r.get("pipe:%d" % (n - 1)) == b"value-%d" % (n - 1)


def test_pipe_counts_errors(server, r):
    data = (encode_command("SET", "a", "1") + encode_command("INCR", "a") + encode_command("GET") +
            encode_command("NOSUCH") + encode_command("SET", "b", "x") + encode_command("INCR", "b"))
    p = server.cli("--pipe", input=data, timeout=30)
    out = p.stdout.decode()
    assert "errors: 3, replies: 6" in out, out
    assert p.returncode != 0  # redis-cli --pipe exits 1 when there were errors
    assert r.get("a") == b"2"


def test_bigkeys(server, r):
    r.set("bigone", "x" * 10000)
    r.set("small", "x")
    r.mset({"k%d" % i: "v" * (i % 50) for i in range(300)})
    p = server.cli("--bigkeys", timeout=60)
    assert p.returncode == 0, p.stderr
    assert "Biggest string found '\"bigone\"' has 10000 bytes" in p.stdout, p.stdout
    m = re.search(r"Sampled (\d+) keys in the keyspace!", p.stdout)
    assert m and int(m.group(1)) == 302
    assert re.search(r"302 strings with \d+ bytes \(100\.00% of keys", p.stdout)


def test_memkeys(server, r):
    r.set("bigone", "x" * 20000)
    r.set("small", "x")
    p = server.cli("--memkeys", timeout=60)
    assert p.returncode == 0, p.stderr
    m = re.search(r"Biggest string found '\"bigone\"' has (\d+) bytes", p.stdout)
    assert m and int(m.group(1)) >= 20000, p.stdout


def test_resp3_mode(server, r):
    assert server.cli("-3", "--no-raw", "CONFIG", "GET", "maxmemory").stdout == '1# "maxmemory" => "0"\n'
    assert server.cli("-3", "--no-raw", "GET", "nokey").stdout == "(nil)\n"
    assert server.cli("-3", "--no-raw", "INCRBYFLOAT", "f", "1.5").stdout == '"1.5"\n'
    out = server.cli("-3", "--no-raw", "HELLO", "3").stdout.split("\n")
    assert out[0] == '1# "server" => "redis"'
    assert re.fullmatch(r'2# "version" => "\d+\.\d+\.\d+"', out[1])
    assert out[2] == '3# "proto" => (integer) 3'
    assert re.fullmatch(r'4# "id" => \(integer\) \d+', out[3])
    assert out[4:] == ['5# "mode" => "standalone"', '6# "role" => "master"', '7# "modules" => (empty array)', ""]
    typed = "SET k v\nGET k\nGET nokey\nMGET k nokey\nCLIENT INFO\n"
    p = server.cli("-3", "--no-raw", input=typed)
    lines = p.stdout.split("\n")
    assert lines[:6] == ["OK", '"v"', "(nil)", '1) "v"', "2) (nil)", lines[5]]
    assert "resp=3" in lines[5]
    assert server.cli("-3", "CONFIG", "GET", "maxmemory").stdout == "maxmemory 0\n"
    assert server.cli("-3", "--no-raw", "COMMAND", "INFO", "get").stdout.startswith(
        '1)  1) "get"\n    2) (integer) 2\n    3) 1~ readonly\n       2~ fast\n')
