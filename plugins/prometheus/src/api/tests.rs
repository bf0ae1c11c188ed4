use super::*;
use crate::settings::Settings;

const NOW: f64 = 1_700_000_000.0;

fn settings(extra: &[(&str, &str)]) -> Settings {
    let mut pairs = vec![("url".to_owned(), "http://prom:9090".to_owned())];
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Settings::parse(&pairs).unwrap()
}

fn get(target: &str, query: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: "GET".to_owned(),
        target: target.to_owned(),
        query: query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        headers: vec![("authorization".to_owned(), "Bearer leaked".to_owned())],
        body: Vec::new(),
    }
}

fn ok(body: &str) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("set-cookie".to_owned(), "x".to_owned()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

/// Runs `request` against an upstream that records what it was sent and answers `answer`.
fn run(
    settings: &Settings,
    request: &HttpRequest,
    answer: Result<HttpResponse, OutboundError>,
) -> (HttpResponse, Vec<HttpRequest>) {
    let mut sent = Vec::new();
    let response = handle(settings, request, NOW, &mut |r: &HttpRequest| {
        sent.push(r.clone());
        answer.clone()
    });
    (response, sent)
}

fn form(request: &HttpRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

fn error_of(response: &HttpResponse) -> (u16, String, String) {
    let v: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(v["status"], "error");
    (
        response.status,
        v["errorType"].as_str().unwrap().to_owned(),
        v["error"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn an_instant_query_goes_through_unchanged_and_the_answer_comes_back_unchanged() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    let (response, sent) = run(
        &settings(&[]),
        &get("/api/v1/query", &[("query", "up"), ("time", "1700000000")]),
        Ok(ok(body)),
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.body, body.as_bytes());
    assert_eq!(
        response.headers,
        [("content-type".to_owned(), "application/json".to_owned())]
    );
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].target, "http://prom:9090/api/v1/query");
    assert!(
        sent[0]
            .headers
            .iter()
            .all(|(k, _)| !k.eq_ignore_ascii_case("authorization"))
    );
    let form = form(&sent[0]);
    assert_eq!(form[0], ("query".to_owned(), "up".to_owned()));
    assert_eq!(form[1], ("time".to_owned(), "1700000000".to_owned()));
    assert_eq!(form[2], ("timeout".to_owned(), "30000ms".to_owned()));
}

#[test]
fn everything_but_the_read_api_is_forbidden() {
    for path in [
        "/api/v1/admin/tsdb/delete_series",
        "/api/v1/admin/tsdb/snapshot",
        "/api/v1/write",
        "/federate",
        "/api/v1/status/config",
        "/api/v1/targets",
        "/-/quit",
        "/api/v1/query/../admin/tsdb/snapshot",
        "/api/v1/label/../../admin/values",
    ] {
        let (response, sent) = run(&settings(&[]), &get(path, &[]), Ok(ok("{}")));
        let (status, kind, message) = error_of(&response);
        assert_eq!((status, kind.as_str()), (403, "forbidden"), "{path}");
        assert!(message.contains("not part of the read API"), "{message}");
        assert!(sent.is_empty(), "{path} reached Prometheus");
    }
    let mut delete = get("/api/v1/query", &[("query", "up")]);
    delete.method = "DELETE".to_owned();
    let (response, sent) = run(&settings(&[]), &delete, Ok(ok("{}")));
    assert_eq!(response.status, 405);
    assert!(sent.is_empty());
}

#[test]
fn a_form_post_is_read_and_a_smuggled_second_query_refused() {
    let mut post = get("/api/v1/query", &[]);
    post.method = "POST".to_owned();
    post.headers = vec![(
        "Content-Type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    )];
    post.body = b"query=sum(up)".to_vec();
    let (response, sent) = run(&settings(&[]), &post, Ok(ok("{}")));
    assert_eq!(response.status, 200);
    assert_eq!(form(&sent[0])[0].1, "sum(up)");

    post.query = vec![("query".to_owned(), "up".to_owned())];
    let (response, sent) = run(&settings(&[]), &post, Ok(ok("{}")));
    let (status, _, message) = error_of(&response);
    assert_eq!(status, 400);
    assert!(
        message.contains("`query` is given more than once"),
        "{message}"
    );
    assert!(sent.is_empty());
}

#[test]
fn ten_years_at_one_second_steps_is_refused_before_prometheus_sees_it() {
    let ten_years = 10.0 * 365.0 * 86_400.0;
    let (response, sent) = run(
        &settings(&[]),
        &get(
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", &(NOW - ten_years).to_string()),
                ("end", &NOW.to_string()),
                ("step", "1s"),
            ],
        ),
        Ok(ok("{}")),
    );
    let (status, kind, message) = error_of(&response);
    assert_eq!((status, kind.as_str()), (400, "bad_data"));
    assert!(message.contains("max_range"), "{message}");
    assert!(sent.is_empty());

    // Within the range, a step below the minimum and too many points are refused too.
    let range = |step: &str, extra: &[(&str, &str)]| {
        run(
            &settings(extra),
            &get(
                "/api/v1/query_range",
                &[
                    ("query", "up"),
                    ("start", "2023-11-14T00:00:00Z"),
                    ("end", "2023-11-15T00:00:00Z"),
                    ("step", step),
                ],
            ),
            Ok(ok("{}")),
        )
    };
    let (response, _) = range("1s", &[("min_step", "15s")]);
    assert!(error_of(&response).2.contains("min_step"));
    let (response, _) = range("1s", &[]);
    assert!(
        error_of(&response).2.contains("86401 points"),
        "{:?}",
        error_of(&response)
    );
    let (response, sent) = range("60", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(form(&sent[0])[3], ("step".to_owned(), "60".to_owned()));
}

#[test]
fn a_range_hidden_inside_the_expression_counts_too() {
    let (response, sent) = run(
        &settings(&[("max_range", "1d")]),
        &get("/api/v1/query", &[("query", "max_over_time(up[10y])")]),
        Ok(ok("{}")),
    );
    let (status, _, message) = error_of(&response);
    assert_eq!(status, 400);
    assert!(message.contains("reads 10y back in time"), "{message}");
    assert!(sent.is_empty());
}

#[test]
fn an_answer_over_the_limit_is_an_error_never_a_cut_document() {
    let big = "x".repeat(2048);
    let (response, _) = run(
        &settings(&[("max_response", "1024")]),
        &get("/api/v1/query", &[("query", "up")]),
        Ok(ok(&big)),
    );
    let (status, kind, message) = error_of(&response);
    assert_eq!((status, kind.as_str()), (422, "execution"));
    assert!(
        message.contains("larger than 1 KiB (max_response)"),
        "{message}"
    );
    let (response, _) = run(
        &settings(&[]),
        &get("/api/v1/query", &[("query", "up")]),
        Err(OutboundError::TooLarge(16 << 20)),
    );
    assert!(error_of(&response).2.contains("16 MiB"));
}

#[test]
fn prometheus_down_is_a_clear_503() {
    let (response, _) = run(
        &settings(&[]),
        &get("/api/v1/query", &[("query", "up")]),
        Err(OutboundError::Failed("connection refused".to_owned())),
    );
    let (status, kind, message) = error_of(&response);
    assert_eq!((status, kind.as_str()), (503, "unavailable"));
    assert_eq!(
        message,
        "Prometheus at http://prom:9090 did not answer: connection refused"
    );
}

#[test]
fn tenancy_confines_queries_and_series_requests() {
    let team = settings(&[("enforce", r#"namespace=~"team-a|team-b""#)]);
    let (_, sent) = run(
        &team,
        &get("/api/v1/query", &[("query", r#"up or {__name__=~".+"}"#)]),
        Ok(ok("{}")),
    );
    assert_eq!(
        form(&sent[0])[0].1,
        r#"up{namespace=~"team-a|team-b"} or {__name__=~".+",namespace=~"team-a|team-b"}"#
    );
    let (_, sent) = run(&team, &get("/api/v1/labels", &[]), Ok(ok("{}")));
    let form_sent = form(&sent[0]);
    assert_eq!(
        form_sent[0],
        (
            "match[]".to_owned(),
            r#"{__name__=~".+",namespace=~"team-a|team-b"}"#.to_owned()
        )
    );
    // An open window is closed at max_range before now.
    assert_eq!(form_sent[1].1, format!("{:.3}", NOW - 31.0 * 86_400.0));
    assert_eq!(form_sent[2].1, format!("{NOW:.3}"));
    let (_, sent) = run(
        &team,
        &get("/api/v1/label/job/values", &[("match[]", "up")]),
        Ok(ok("{}")),
    );
    assert_eq!(sent[0].method, "GET");
    assert_eq!(sent[0].target, "http://prom:9090/api/v1/label/job/values");
    assert_eq!(sent[0].query[0].1, r#"up{namespace=~"team-a|team-b"}"#);
    let (response, sent) = run(&team, &get("/api/v1/metadata", &[]), Ok(ok("{}")));
    assert_eq!(response.status, 403);
    assert!(sent.is_empty());
    let (response, sent) = run(
        &team,
        &get("/api/v1/query", &[("query", "info(up)")]),
        Ok(ok("{}")),
    );
    assert_eq!(response.status, 403);
    assert!(sent.is_empty());
}
