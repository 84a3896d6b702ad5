//! The account pages' languages: English and Japanese, chosen from the `lang` cookie (the
//! user's own choice) or else from Accept-Language (RFC 9110 §12.5.4, q-values honoured).
//! Every string a page shows is in [`Texts`]; a string missing in one language does not
//! compile. Placeholders are `{n}`, `{until}`, `{used}`, `{limit}`, `{percent}`.

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    /// The BCP 47 tag (`<html lang>`, the cookie value).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    /// The cookie value or `?to=` parameter, `None` for anything else.
    pub fn from_tag(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    /// The language the switch link offers.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Ja,
            Lang::Ja => Lang::En,
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Ja => &JA,
        }
    }
}

/// The language to answer in: the cookie's, else the best of Accept-Language, else English.
pub fn choose(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
    cookie
        .and_then(Lang::from_tag)
        .or_else(|| accept_language.and_then(from_accept_language))
        .unwrap_or(Lang::En)
}

/// The supported language with the highest q-value (RFC 9110 §12.4.2, §12.5.4); the first
/// listed wins a tie. A range matches by its primary subtag (`ja-JP` is Japanese, `en-GB`
/// English); `*` stands for English; `q=0` means "not this one". `None` when nothing matches.
pub fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(u16, Lang)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1000u16;
        for p in parts {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                match parse_qvalue(v.trim()) {
                    Some(v) => q = v,
                    // An unreadable weight: skip the range rather than guess.
                    None => q = 0,
                }
            }
        }
        let primary = range.split('-').next().unwrap_or("");
        let lang = match primary {
            "ja" => Lang::Ja,
            "en" | "*" => Lang::En,
            _ => continue,
        };
        if q == 0 {
            continue;
        }
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

/// A qvalue (RFC 9110 §12.4.2: `0[.ddd]` or `1[.000]`) in thousandths.
fn parse_qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Every string of the account pages, in one language.
pub struct Texts {
    /// The name of this language, in itself (the switch link of the other language shows it).
    pub name: &'static str,
    pub site: &'static str,
    pub login_title: &'static str,
    pub address: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub signed_in_as: &'static str,
    pub login_failed: &'static str,
    pub banned: &'static str,
    pub unavailable: &'static str,
    pub session_ended: &'static str,
    pub forbidden: &'static str,
    pub not_found: &'static str,
    pub settings_title: &'static str,
    pub settings_intro: &'static str,
    pub col_server: &'static str,
    pub col_port: &'static str,
    pub col_security: &'static str,
    pub incoming_imap: &'static str,
    pub incoming_pop3: &'static str,
    pub outgoing_smtp: &'static str,
    pub ssl_tls: &'static str,
    pub starttls: &'static str,
    pub username: &'static str,
    pub password_value: &'static str,
    pub smtp_auth: &'static str,
    pub smtp_auth_value: &'static str,
    pub profiles_title: &'static str,
    pub apple_profile: &'static str,
    pub qr_caption: &'static str,
    pub thunderbird_url: &'static str,
    pub quota_title: &'static str,
    pub quota_storage: &'static str,
    pub quota_messages: &'static str,
    pub quota_of: &'static str,
    pub quota_unlimited: &'static str,
    pub messages_unit: &'static str,
    pub retention_title: &'static str,
    pub retention_keep: &'static str,
    pub retention_days: &'static str,
    pub retention_on_download: &'static str,
    pub retention_by_admin: &'static str,
    pub retention_choose: &'static str,
    pub retention_default: &'static str,
    pub retention_opt_keep: &'static str,
    pub retention_opt_days: &'static str,
    pub retention_opt_now: &'static str,
    pub retention_save: &'static str,
    pub retention_saved: &'static str,
    pub retention_invalid: &'static str,
    pub password_title: &'static str,
    pub current_password: &'static str,
    pub new_password: &'static str,
    pub new_password_again: &'static str,
    pub change_password: &'static str,
    pub password_changed: &'static str,
    pub password_mismatch: &'static str,
    pub password_too_short: &'static str,
    pub password_too_long: &'static str,
    pub password_wrong: &'static str,
    pub password_rate: &'static str,
    pub password_rules: &'static str,
}

pub static EN: Texts = Texts {
    name: "English",
    site: "Mail account",
    login_title: "Sign in to your mail account",
    address: "Mail address",
    password: "Password",
    sign_in: "Sign in",
    sign_out: "Sign out",
    signed_in_as: "Signed in as:",
    login_failed: "The mail address or the password is incorrect.",
    banned: "Too many failed sign-ins from your address. Try again after {until}.",
    unavailable: "The server cannot answer right now. Try again in a moment.",
    session_ended: "Your session has ended. Please sign in again.",
    forbidden: "This form has expired or was not sent from this page. Reload the page and try again.",
    not_found: "There is no such page.",
    settings_title: "Mail app settings",
    settings_intro: "If your mail app (Outlook, Thunderbird, iPhone Mail, the Gmail app…) does not set itself up, enter these values.",
    col_server: "Server name",
    col_port: "Port",
    col_security: "Encryption",
    incoming_imap: "Incoming mail server (IMAP)",
    incoming_pop3: "Incoming mail server (POP3)",
    outgoing_smtp: "Outgoing mail server (SMTP)",
    ssl_tls: "SSL/TLS",
    starttls: "STARTTLS",
    username: "User name",
    password_value: "The password of this account",
    smtp_auth: "Outgoing server authentication",
    smtp_auth_value: "Required: the same user name and password",
    profiles_title: "Automatic setup",
    apple_profile: "Download the profile for iPhone, iPad and Mac",
    qr_caption: "Or scan this code with the iPhone camera to install the profile.",
    thunderbird_url: "Configuration file for Thunderbird:",
    quota_title: "Storage",
    quota_storage: "Space used",
    quota_messages: "Messages",
    quota_of: "{used} of {limit} ({percent}%)",
    quota_unlimited: "{used} (no limit)",
    messages_unit: "messages",
    retention_title: "POP3: copies left on the server",
    retention_keep: "Messages downloaded with POP3 stay on the server.",
    retention_days: "Messages downloaded with POP3 are deleted from the server {n} days after the download.",
    retention_on_download: "Messages downloaded with POP3 are deleted from the server once downloaded.",
    retention_by_admin: "This is set by the server's administrator.",
    retention_choose: "For mail apps that use POP3:",
    retention_default: "The server's setting ({policy})",
    retention_opt_keep: "Keep messages on the server",
    retention_opt_days: "Delete from the server {n} days after the download",
    retention_opt_now: "Delete from the server soon after the download",
    retention_save: "Save",
    retention_saved: "Saved. It applies from the next POP3 connection.",
    retention_invalid: "That choice is not offered.",
    password_title: "Change the password",
    current_password: "Current password",
    new_password: "New password",
    new_password_again: "New password (again)",
    change_password: "Change the password",
    password_changed: "The password has been changed. Enter the new one in your mail apps; other sign-ins to these pages were ended.",
    password_mismatch: "The two new passwords differ.",
    password_too_short: "The new password must have at least {n} characters.",
    password_too_long: "The new password must have at most {n} characters.",
    password_wrong: "The current password is incorrect.",
    password_rate: "The password was changed too often. Try again later.",
    password_rules: "At least {n} characters.",
};

pub static JA: Texts = Texts {
    name: "日本語",
    site: "メールアカウント",
    login_title: "メールアカウントにログイン",
    address: "メールアドレス",
    password: "パスワード",
    sign_in: "ログイン",
    sign_out: "ログアウト",
    signed_in_as: "ログイン中：",
    login_failed: "メールアドレスまたはパスワードが正しくありません。",
    banned: "お使いの接続元からのログイン失敗が多すぎます。{until} 以降にもう一度お試しください。",
    unavailable: "現在サーバーが応答できません。しばらくしてからもう一度お試しください。",
    session_ended: "セッションの有効期限が切れました。もう一度ログインしてください。",
    forbidden: "フォームの有効期限が切れたか、このページ以外から送信されました。ページを再読み込みしてもう一度お試しください。",
    not_found: "ページが見つかりません。",
    settings_title: "メールソフトの設定",
    settings_intro: "メールソフト（Outlook、Thunderbird、iPhone のメール、Gmail アプリなど）で自動設定されない場合は、次の内容を入力してください。",
    col_server: "サーバー名",
    col_port: "ポート番号",
    col_security: "暗号化方式",
    incoming_imap: "受信サーバー（IMAP）",
    incoming_pop3: "受信サーバー（POP3）",
    outgoing_smtp: "送信サーバー（SMTP）",
    ssl_tls: "SSL/TLS",
    starttls: "STARTTLS",
    username: "ユーザー名",
    password_value: "このアカウントのパスワード",
    smtp_auth: "送信サーバーの認証（SMTP 認証）",
    smtp_auth_value: "必要（受信サーバーと同じユーザー名とパスワード）",
    profiles_title: "自動設定",
    apple_profile: "iPhone・iPad・Mac 用の構成プロファイルをダウンロード",
    qr_caption: "iPhone のカメラでこのコードを読み取ってもプロファイルをインストールできます。",
    thunderbird_url: "Thunderbird 用の設定ファイル：",
    quota_title: "容量",
    quota_storage: "使用容量",
    quota_messages: "メール数",
    quota_of: "{limit} 中 {used} 使用（{percent}%）",
    quota_unlimited: "{used}（上限なし）",
    messages_unit: "通",
    retention_title: "POP3：サーバーにメッセージのコピーを残す",
    retention_keep: "POP3 で受信したメールはサーバーに残ります。",
    retention_days: "POP3 で受信したメールは、受信から {n} 日後にサーバーから削除されます。",
    retention_on_download: "POP3 で受信したメールは、受信後にサーバーから削除されます。",
    retention_by_admin: "この設定はサーバー管理者が行っています。",
    retention_choose: "POP3 を使うメールソフトの場合：",
    retention_default: "サーバーの設定に従う（{policy}）",
    retention_opt_keep: "サーバーにメッセージを残す",
    retention_opt_days: "受信から {n} 日後にサーバーから削除する",
    retention_opt_now: "受信後すぐにサーバーから削除する",
    retention_save: "保存",
    retention_saved: "保存しました。次回の POP3 接続から適用されます。",
    retention_invalid: "その選択肢はありません。",
    password_title: "パスワードの変更",
    current_password: "現在のパスワード",
    new_password: "新しいパスワード",
    new_password_again: "新しいパスワード（確認用）",
    change_password: "パスワードを変更",
    password_changed: "パスワードを変更しました。メールソフトにも新しいパスワードを設定してください。他の端末でのこのページへのログインは終了しました。",
    password_mismatch: "新しいパスワードが一致しません。",
    password_too_short: "新しいパスワードは {n} 文字以上にしてください。",
    password_too_long: "新しいパスワードは {n} 文字以内にしてください。",
    password_wrong: "現在のパスワードが正しくありません。",
    password_rate: "パスワードの変更回数が多すぎます。しばらくしてからもう一度お試しください。",
    password_rules: "{n} 文字以上。",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_honours_q_values_and_subtags() {
        assert_eq!(from_accept_language("ja"), Some(Lang::Ja));
        assert_eq!(
            from_accept_language("ja-JP,ja;q=0.9,en;q=0.8"),
            Some(Lang::Ja)
        );
        assert_eq!(
            from_accept_language("en-US,en;q=0.9,ja;q=0.8"),
            Some(Lang::En)
        );
        assert_eq!(from_accept_language("en;q=0.5, ja;q=0.8"), Some(Lang::Ja));
        assert_eq!(from_accept_language("fr, ja;q=0.1"), Some(Lang::Ja));
        assert_eq!(from_accept_language("fr, de;q=0.9"), None);
        // q=0 means "not acceptable".
        assert_eq!(from_accept_language("ja;q=0, en;q=0.1"), Some(Lang::En));
        assert_eq!(from_accept_language("ja;q=0"), None);
        // A tie: the first listed.
        assert_eq!(from_accept_language("ja;q=0.5, en;q=0.5"), Some(Lang::Ja));
        assert_eq!(from_accept_language("*;q=0.3, ja;q=0.2"), Some(Lang::En));
        // Malformed weights are not taken as 1.
        assert_eq!(from_accept_language("ja;q=2, en;q=0.1"), Some(Lang::En));
        assert_eq!(
            from_accept_language("ja;q=0.12345, en;q=0.1"),
            Some(Lang::En)
        );
        assert_eq!(from_accept_language(""), None);
        assert_eq!(from_accept_language("JA-jp"), Some(Lang::Ja));
    }

    #[test]
    fn the_cookie_wins_over_the_header() {
        assert_eq!(choose(Some("en"), Some("ja")), Lang::En);
        assert_eq!(choose(Some("ja"), None), Lang::Ja);
        assert_eq!(choose(Some("xx"), Some("ja")), Lang::Ja);
        assert_eq!(choose(None, None), Lang::En);
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.8"), Some(800));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("1.5"), None);
        assert_eq!(parse_qvalue("x"), None);
    }
}
