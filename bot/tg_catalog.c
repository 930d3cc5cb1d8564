/* tg_catalog.c: every text the bot sends, in English and Arabic, in one
 * table (a row per message key).  Formats take only strings (%s), so a
 * caller's arguments cannot mismatch a translation; the order of the %s is
 * the same in both languages.  Keys other parts use are listed in tg.h. */
#include <string.h>

#include "tg_int.h"

struct tg_msg_row {
    const char *key, *en, *ar;
};

static const struct tg_msg_row catalog[] = {
    {"welcome", "Welcome, %s! Your wallet is ready.\n/balance shows your balance, /deposit <amount> adds funds, "
                "/withdraw sends them out, /history lists your last operations, /help explains.",
     "أهلاً %s! محفظتك جاهزة.\n/balance لعرض رصيدك، /deposit <المبلغ> للإيداع، /withdraw للسحب، "
     "/history لآخر العمليات، /help للمساعدة."},
    {"help", "Commands:\n/balance - your balance\n/deposit <amount> - get a payment link\n/withdraw - send funds to "
             "your wallet\n/history - last 10 operations\n/cancel - leave the current step",
     "الأوامر:\n/balance - رصيدك\n/deposit <المبلغ> - رابط للدفع\n/withdraw - سحب الأموال إلى محفظتك\n"
     "/history - آخر 10 عمليات\n/cancel - إلغاء الخطوة الحالية"},
    {"balance", "Your balance: %s (on hold: %s)", "رصيدك: %s (محجوز: %s)"},
    {"deposit_usage", "Send /deposit followed by the amount, for example: /deposit 25.50",
     "أرسل /deposit متبوعاً بالمبلغ، مثلاً: /deposit 25.50"},
    {"deposit_pending", "Creating your payment link for %s...", "جارٍ إنشاء رابط الدفع لمبلغ %s..."},
    {"deposit_link", "Pay %s here: %s", "ادفع %s من هنا: %s"},
    {"deposit_credited", "Deposit received: %s", "تم استلام الإيداع: %s"},
    {"withdraw_ask_amount", "How much do you want to withdraw? Your balance is %s. (/cancel to stop)",
     "كم تريد أن تسحب؟ رصيدك %s. (/cancel للإلغاء)"},
    {"withdraw_ask_address", "Withdrawing %s. Send the wallet address.", "سحب %s. أرسل عنوان المحفظة."},
    {"withdraw_confirm", "Withdraw %s to %s?", "سحب %s إلى %s؟"},
    {"btn_confirm", "Confirm", "تأكيد"},
    {"btn_cancel", "Cancel", "إلغاء"},
    {"withdraw_requested", "Withdrawal of %s requested. We will tell you when it is sent.",
     "تم طلب سحب %s. سنبلغك عند الإرسال."},
    {"withdraw_cancelled", "Withdrawal cancelled.", "تم إلغاء السحب."},
    {"withdraw_done", "Withdrawal of %s sent.", "تم إرسال سحب %s."},
    {"withdraw_refused", "Withdrawal of %s refused: %s. The funds are back on your balance.",
     "تم رفض سحب %s: %s. أعيدت الأموال إلى رصيدك."},
    {"withdraw_expired", "Your withdrawal request expired before you confirmed it; nothing was taken from your balance.",
     "انتهت صلاحية طلب السحب قبل تأكيده؛ لم يُخصم شيء من رصيدك."},
    {"withdraw_nothing", "There is no withdrawal waiting for confirmation.", "لا يوجد سحب بانتظار التأكيد."},
    {"balance_short", "Your balance (%s) is too low for that amount.", "رصيدك (%s) غير كافٍ لهذا المبلغ."},
    {"amount_format", "That is not an amount. Send a number such as 10 or 12.50.",
     "هذا ليس مبلغاً. أرسل رقماً مثل 10 أو 12.50."},
    {"amount_zero", "The amount must be more than zero.", "يجب أن يكون المبلغ أكبر من صفر."},
    {"amount_decimals", "At most 2 decimals, please (for example 12.50).", "منزلتان عشريتان على الأكثر (مثلاً 12.50)."},
    {"amount_too_big", "The most you can use at once is %s.", "الحد الأقصى في المرة الواحدة هو %s."},
    {"address_length", "A wallet address has %s to %s characters.", "عنوان المحفظة من %s إلى %s حرفاً."},
    {"address_charset", "That address has characters a wallet address cannot have.",
     "هذا العنوان يحتوي على أحرف غير مسموحة في عناوين المحافظ."},
    {"history_empty", "No operations yet.", "لا توجد عمليات بعد."},
    {"history_head", "Your last operations:", "آخر عملياتك:"},
    {"history_line", "%s  %s  %s (balance %s)", "%s  %s  %s (الرصيد %s)"},
    {"cancelled", "Cancelled.", "تم الإلغاء."},
    {"nothing_to_cancel", "Nothing to cancel.", "لا شيء لإلغائه."},
    {"unknown_command", "I do not know that command. /help lists what I can do.",
     "لا أعرف هذا الأمر. /help يعرض ما يمكنني فعله."},
    {"edited_ignored", "I only read new messages; please send it again.", "أقرأ الرسائل الجديدة فقط، أرسلها مرة أخرى."},
    {"busy", "Please finish or /cancel the current step first.", "يرجى إنهاء الخطوة الحالية أو /cancel أولاً."},
    {"try_later", "Something went wrong on our side; please try again in a minute.",
     "حدث خطأ من جهتنا، يرجى المحاولة بعد دقيقة."},
    {"admin_withdrawal", "Withdrawal requested: user %s, %s to %s", "طلب سحب: المستخدم %s، %s إلى %s"},
};

const char *tg_msg(const char *lang, const char *key)
{
    for (size_t i = 0; i < sizeof catalog / sizeof *catalog; i++)
        if (!strcmp(catalog[i].key, key))
            return lang && !strcmp(lang, "ar") ? catalog[i].ar : catalog[i].en;
    return NULL;
}

const char *tg_lang_of(const char *code)
{
    return code && code[0] == 'a' && code[1] == 'r' && (!code[2] || code[2] == '-') ? "ar" : "en";
}
