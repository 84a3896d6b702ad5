//! The account pages' two changes: a new password (checked against the current one, with
//! the length limits and an hourly cap per account) and the POP3 retention choice.

use super::*;

pub(super) async fn change_password(
    server: &WebServer,
    pages: &AccountPages,
    req: Request<Incoming>,
    peer: IpAddr,
    lang: Lang,
) -> Response<Body> {
    let (token, s, f) = match session_post(server, pages, req, lang).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    match set_password(
        pages,
        &s,
        get("current"),
        get("new"),
        get("new2"),
        peer,
        lang,
    )
    .await
    {
        Ok(()) => {
            pages.sessions.end_others(s.account, &token);
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SEE_OTHER;
            r.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_static("/account/?done=password"),
            );
            r
        }
        Err((status, msg)) => {
            settings_page(server, pages, lang, &s, status, None, Some(&msg)).await
        }
    }
}

/// Stores the user's POP3 retention choice (`choice`: `default`, `never` or a number of days
/// among those offered).
pub(super) async fn set_retention(
    server: &WebServer,
    pages: &AccountPages,
    req: Request<Incoming>,
    lang: Lang,
) -> Response<Body> {
    let t = lang.texts();
    let (_, s, f) = match session_post(server, pages, req, lang).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(policy) = &pages.retention else {
        return html(StatusCode::NOT_FOUND, pages::notice(lang, t.not_found));
    };
    let offered = policy.choices();
    let given = f.get("choice").map(String::as_str).unwrap_or("");
    let choice = match given {
        "default" => Some(None),
        v => offered
            .iter()
            .find(|c| pages::choice_value(**c) == v)
            .map(|c| Some(*c)),
    };
    let Some(choice) = choice.filter(|_| !offered.is_empty()) else {
        return settings_page(
            server,
            pages,
            lang,
            &s,
            StatusCode::BAD_REQUEST,
            None,
            Some(t.retention_invalid),
        )
        .await;
    };
    let stored = match mail_types::Address::parse(&s.address) {
        Ok(a) => pages
            .store
            .set_pop3_expire(&a, choice)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = stored {
        tracing::warn!(user = %s.address, error = %e, "account pages: cannot store the POP3 retention choice");
        return settings_page(
            server,
            pages,
            lang,
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            Some(t.unavailable),
        )
        .await;
    }
    policy.chosen(&s.address, choice);
    tracing::info!(event = %"pop3_retention_changed", user = %s.address, choice = %given, "POP3 retention chosen on the account pages");
    let mut r = see_other("/account/");
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_static("/account/?done=retention"),
    );
    r
}

/// Checks and stores a new password; the error is the status and the message to show.
async fn set_password(
    pages: &AccountPages,
    s: &Session,
    current: &str,
    new: &str,
    new2: &str,
    peer: IpAddr,
    lang: Lang,
) -> Result<(), (StatusCode, String)> {
    let t = lang.texts();
    let cfg = &pages.config;
    let fail = |status, msg: &str| Err((status, msg.to_string()));
    if new != new2 {
        return fail(StatusCode::BAD_REQUEST, t.password_mismatch);
    }
    let chars = new.chars().count();
    if chars < cfg.min_password_length {
        let m = pages::fill_n(
            t.password_too_short,
            "n",
            &cfg.min_password_length.to_string(),
        );
        return fail(StatusCode::BAD_REQUEST, &m);
    }
    if chars > cfg.max_password_length {
        let m = pages::fill_n(
            t.password_too_long,
            "n",
            &cfg.max_password_length.to_string(),
        );
        return fail(StatusCode::BAD_REQUEST, &m);
    }
    // At most `password_changes_per_hour` attempts per account, counted before the password
    // check, so that a stolen session cannot use this form to guess quickly either.
    {
        let now = Instant::now();
        let mut changes = pages.changes.lock().unwrap_or_else(|e| e.into_inner());
        let list = changes.entry(s.account).or_default();
        list.retain(|at| now.saturating_duration_since(*at) < Duration::from_secs(3600));
        if list.len() >= cfg.password_changes_per_hour {
            return fail(StatusCode::TOO_MANY_REQUESTS, t.password_rate);
        }
        list.push(now);
    }
    // The current password, checked like a sign-in (failures counted, bans honoured).
    match pages
        .auth
        .authenticate(&s.address, current, "web", peer)
        .await
    {
        Ok(a) if a.account == s.account => {}
        Ok(_) | Err(auth::AuthError::Invalid) => {
            return fail(StatusCode::FORBIDDEN, t.password_wrong);
        }
        Err(auth::AuthError::Banned { until }) => {
            let m = pages::fill_n(t.banned, "until", &auth::format_time(until));
            return fail(StatusCode::TOO_MANY_REQUESTS, &m);
        }
        Err(auth::AuthError::Temporary) => {
            return fail(StatusCode::SERVICE_UNAVAILABLE, t.unavailable);
        }
    }
    // The same hashing as `yubin user passwd`: argon2id, plus SCRAM-SHA-256 credentials.
    let pw = new.to_string();
    let hashed = tokio::task::spawn_blocking(move || {
        (auth::hash_password(&pw), auth::scram_credentials(&pw))
    })
    .await;
    let Ok((hash, scram)) = hashed else {
        return fail(StatusCode::SERVICE_UNAVAILABLE, t.unavailable);
    };
    let Ok(address) = mail_types::Address::parse(&s.address) else {
        return fail(StatusCode::SERVICE_UNAVAILABLE, t.unavailable);
    };
    let stored = match pages.store.set_password(&address, &hash).await {
        Ok(()) => pages.store.set_scram(&address, &scram).await,
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        tracing::warn!(user = %s.address, error = %e, "account pages: cannot store the new password");
        return fail(StatusCode::SERVICE_UNAVAILABLE, t.unavailable);
    }
    tracing::info!(event = %"password_changed", user = %s.address, %peer, "password changed on the account pages");
    Ok(())
}
