//! The HTML the server renders itself: the login page, the set-up page shown while no
//! password is configured, and the shell the dashboard's script fills in. Everything put
//! into a page is escaped; the data pages are drawn in the browser from the JSON API with
//! DOM text nodes, which need no escaping.

use std::fmt::Write as _;

use axum::http::HeaderMap;

use super::assets;

/// The two languages the dashboard speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

/// The cookie holding the chosen language (readable by the script, which switches it).
pub const LANG_COOKIE: &str = "lr_lang";

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "zh" | "zh-cn" | "zh-hans" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The language for a request: the cookie if set, else the browser's first preference
    /// among the two.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(lang) = super::cookie(headers, LANG_COOKIE).and_then(|c| Lang::parse(&c)) {
            return lang;
        }
        let accept = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        for part in accept.split(',') {
            let tag = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if tag.starts_with("zh") {
                return Lang::Zh;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::En
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value for a `{{name}}` placeholder.
enum Value<'a> {
    /// Escaped on the way in.
    Text(&'a str),
    /// Already HTML, built here from escaped parts.
    Html(&'a str),
}

/// Fills the `{{name}}` placeholders of a template. A placeholder without a value stays as
/// it is, which the tests look for.
fn render(template: &str, values: &[(&str, Value<'_>)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, Value::Text(text))) => out.push_str(&escape(text)),
            Some((_, Value::Html(html))) => out.push_str(html),
            None => {
                out.push_str("{{");
                out.push_str(name);
                out.push_str("}}");
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

struct LoginText {
    title: &'static str,
    subtitle: &'static str,
    username: &'static str,
    password: &'static str,
    submit: &'static str,
    wrong: &'static str,
    limited: &'static str,
    expired: &'static str,
}

fn login_text(lang: Lang) -> LoginText {
    match lang {
        Lang::En => LoginText {
            title: "Sign in · llm-router",
            subtitle: "Admin dashboard",
            username: "Username",
            password: "Password",
            submit: "Sign in",
            wrong: "Wrong username or password.",
            limited: "Too many failed attempts. Try again in {s} s.",
            expired: "The form expired; please sign in again.",
        },
        Lang::Zh => LoginText {
            title: "登录 · llm-router",
            subtitle: "管理控制台",
            username: "用户名",
            password: "密码",
            submit: "登录",
            wrong: "用户名或密码错误。",
            limited: "失败次数过多，请在 {s} 秒后重试。",
            expired: "表单已过期，请重新登录。",
        },
    }
}

/// Why the login page is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginProblem {
    WrongCredentials,
    RateLimited { retry_after_s: u64 },
    FormExpired,
}

/// The login page; `form_token` goes in a hidden field and must match the login cookie.
pub fn login(
    lang: Lang,
    form_token: &str,
    username: &str,
    problem: Option<LoginProblem>,
) -> String {
    let t = login_text(lang);
    let error = match problem {
        None => String::new(),
        Some(p) => {
            let message = match p {
                LoginProblem::WrongCredentials => t.wrong.to_string(),
                LoginProblem::RateLimited { retry_after_s } => {
                    t.limited.replace("{s}", &retry_after_s.to_string())
                }
                LoginProblem::FormExpired => t.expired.to_string(),
            };
            format!("<p class=\"alert\" id=\"login-error\" role=\"alert\">{}</p>", escape(&message))
        }
    };
    render(
        assets::LOGIN_HTML,
        &[
            ("lang", Value::Text(lang.code())),
            ("title", Value::Text(t.title)),
            ("subtitle", Value::Text(t.subtitle)),
            ("label_username", Value::Text(t.username)),
            ("label_password", Value::Text(t.password)),
            ("submit", Value::Text(t.submit)),
            ("username", Value::Text(username)),
            ("form_token", Value::Text(form_token)),
            ("error", Value::Html(&error)),
        ],
    )
}

/// The page every request gets while no password is configured.
pub fn setup(lang: Lang) -> String {
    let (title, lead, steps, restart) = match lang {
        Lang::En => (
            "Set a password · llm-router",
            "The dashboard has no password yet, so it shows nothing else. Set one in the environment (or in .env) of the gateway and restart it:",
            [
                "ADMIN_PASSWORD — the password; or ADMIN_PASSWORD_HASH — an argon2 hash of it (llm-router hash-password prints one)",
                "ADMIN_USERNAME — optional, the login name (default: admin)",
            ],
            "`llm-router demo` makes a one-time password when none is set and prints it.",
        ),
        Lang::Zh => (
            "设置密码 · llm-router",
            "控制台尚未设置密码，因此不显示任何其他内容。请在网关的环境变量（或 .env）中设置，然后重启：",
            [
                "ADMIN_PASSWORD — 密码；或 ADMIN_PASSWORD_HASH — 密码的 argon2 哈希（可用 llm-router hash-password 生成）",
                "ADMIN_USERNAME — 可选，登录名（默认 admin）",
            ],
            "未设置密码时，`llm-router demo` 会生成并打印一次性密码。",
        ),
    };
    let mut items = String::new();
    for step in steps {
        let _ = write!(items, "<li><code>{}</code></li>", escape(step));
    }
    render(
        assets::SETUP_HTML,
        &[
            ("lang", Value::Text(lang.code())),
            ("title", Value::Text(title)),
            ("lead", Value::Text(lead)),
            ("steps", Value::Html(&items)),
            ("restart", Value::Text(restart)),
        ],
    )
}

/// The dashboard's shell: navigation, the session's CSRF token and user, and the scripts.
pub fn shell(lang: Lang, username: &str, csrf: &str) -> String {
    render(
        assets::APP_HTML,
        &[
            ("lang", Value::Text(lang.code())),
            ("username", Value::Text(username)),
            ("csrf", Value::Text(csrf)),
            ("version", Value::Text(env!("CARGO_PKG_VERSION"))),
        ],
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<img src=x onerror="a('b')">&"#),
            "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;"
        );
        assert_eq!(escape("中文 plain"), "中文 plain");
    }

    #[test]
    fn render_escapes_text_and_keeps_unknown_placeholders() {
        let out = render(
            "<p>{{a}}</p>{{b}}{{c}}",
            &[("a", Value::Text("<b>")), ("b", Value::Html("<i>x</i>"))],
        );
        assert_eq!(out, "<p>&lt;b&gt;</p><i>x</i>{{c}}");
        assert_eq!(render("{{unclosed", &[]), "{{unclosed");
    }

    #[test]
    fn pages_fill_every_placeholder() {
        for lang in [Lang::En, Lang::Zh] {
            for page in [
                login(lang, "tok", "ops", Some(LoginProblem::RateLimited { retry_after_s: 42 })),
                login(lang, "tok", "", None),
                setup(lang),
                shell(lang, "ops", "csrf"),
            ] {
                assert!(!page.contains("{{"), "{page}");
                assert!(page.contains(&format!("lang=\"{}\"", lang.code())), "{page}");
            }
        }
        assert!(
            login(Lang::En, "t", "", Some(LoginProblem::RateLimited { retry_after_s: 42 }))
                .contains("42 s")
        );
        assert!(
            login(Lang::Zh, "t", "", Some(LoginProblem::WrongCredentials))
                .contains("用户名或密码错误")
        );
        assert!(setup(Lang::En).contains("ADMIN_PASSWORD"));
    }

    #[test]
    fn user_values_are_escaped_in_pages() {
        let page = shell(Lang::En, "<script>x</script>", "\"onload=");
        assert!(!page.contains("<script>x"), "{page}");
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(page.contains("&quot;onload="));
        let page = login(Lang::En, "t", "\"><svg onload=1>", None);
        assert!(!page.contains("<svg"), "{page}");
    }

    #[test]
    fn language_comes_from_cookie_then_browser() {
        let mut headers = HeaderMap::new();
        assert_eq!(Lang::of(&headers), Lang::En);
        headers.insert("accept-language", HeaderValue::from_static("zh-CN,zh;q=0.9,en;q=0.8"));
        assert_eq!(Lang::of(&headers), Lang::Zh);
        headers.insert("cookie", HeaderValue::from_static("other=1; lr_lang=en"));
        assert_eq!(Lang::of(&headers), Lang::En);
        headers.insert("cookie", HeaderValue::from_static("lr_lang=zh"));
        assert_eq!(Lang::of(&headers), Lang::Zh);
    }
}
