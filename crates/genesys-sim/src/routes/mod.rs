//! Maps requests onto the org: the login endpoint and the `/api/v2` routes.
//!
//! Routing is done by hand on the raw path, split at `/` before percent-decoding each segment,
//! so a data table row key containing an encoded `/` (`%2F`) stays one segment.

use std::borrow::Cow;

use axum::http::{HeaderMap, Method, header};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use url::form_urlencoded;

mod tables;

use crate::auth::{basic_credentials, bearer_token};
use crate::directory::QueueFilter;
use crate::tables::import;
use crate::wire::ApiError;
use crate::{Shared, lock, notifications, permissions};
use tables::{list_rows, list_tables, row, table};

const DEFAULT_PAGE_SIZE: u32 = 25;
/// The members endpoint documents "Max value is 100".
const MAX_MEMBERS_PAGE_SIZE: u32 = 100;

pub(crate) enum Payload {
    Empty,
    Json(Value),
    Text {
        content_type: &'static str,
        body: String,
    },
}

/// A response before it becomes HTTP: the pipeline adds correlation and rate-limit headers.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) payload: Payload,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            payload: Payload::Json(body),
        }
    }

    pub(crate) fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            payload: Payload::Empty,
        }
    }

    pub(crate) fn text(status: u16, content_type: &'static str, body: String) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            payload: Payload::Text { content_type, body },
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::json(e.status, e.body(None))
    }
}

fn reply(r: Result<Reply, ApiError>) -> Reply {
    r.unwrap_or_else(Reply::from)
}

/// The parts of an `/api` request the routes need.
pub(crate) struct ApiRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) raw_path: &'a str,
    pub(crate) query: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// Parsed query string; repeated parameters are kept (`id=a&id=b`).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Query {
        Query(form_urlencoded::parse(q.as_bytes()).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a multi-valued parameter; comma-separated values count as several too.
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::invalid_value(v, "boolean", "true, false")),
        }
    }

    fn positive(&self, name: &str, default: u32) -> Result<u32, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(ApiError::invalid_value(
                    v,
                    "integer",
                    &format!("{name} >= 1"),
                )),
            },
        }
    }

    /// (pageSize, pageNumber), with pageSize capped at `max`.
    fn paging(&self, max: u32) -> Result<(u32, u32), ApiError> {
        let size = self.positive("pageSize", DEFAULT_PAGE_SIZE)?.min(max);
        let number = self.positive("pageNumber", 1)?;
        Ok((size, number))
    }

    /// Parameters to carry into paging URIs.
    fn carry(&self, names: &[&str]) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

/// An entity listing page with Genesys' paging fields and relative URIs.
fn listing(
    all: Vec<Value>,
    size: u32,
    number: u32,
    path: &str,
    carry: &[(String, String)],
) -> Value {
    let total = all.len() as u64;
    let size64 = u64::from(size.max(1));
    let page_count = total.div_ceil(size64);
    let start =
        usize::try_from((u64::from(number) - 1).saturating_mul(size64)).unwrap_or(usize::MAX);
    let entities: Vec<Value> = all
        .into_iter()
        .skip(start)
        .take(usize::try_from(size64).unwrap_or(usize::MAX))
        .collect();
    let uri = |page: u64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("pageSize", &size.to_string());
        s.append_pair("pageNumber", &page.to_string());
        for (k, v) in carry {
            s.append_pair(k, v);
        }
        format!("{path}?{}", s.finish())
    };
    let number = u64::from(number);
    let mut v = json!({
        "entities": entities,
        "pageSize": size,
        "pageNumber": number,
        "total": total,
        "pageCount": page_count,
        "firstUri": uri(1),
        "selfUri": uri(number),
    });
    if let Some(obj) = v.as_object_mut() {
        if page_count > 0 {
            obj.insert("lastUri".to_owned(), Value::String(uri(page_count)));
        }
        if number < page_count {
            obj.insert("nextUri".to_owned(), Value::String(uri(number + 1)));
        }
        if number > 1 {
            obj.insert(
                "previousUri".to_owned(),
                Value::String(uri((number - 1).min(page_count.max(1)))),
            );
        }
    }
    v
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn json_body(req: &ApiRequest<'_>) -> Result<Value, ApiError> {
    if content_type(req.headers) != "application/json" {
        return Err(ApiError::new(
            415,
            "unsupported.media.type",
            "Unsupported Media Type - Unsupported or incorrect media type, such as an incorrect Content-Type value in the header.",
        ));
    }
    serde_json::from_slice(req.body).map_err(|e| {
        ApiError::bad_request(format!(
            "The request could not be understood by the server due to malformed syntax. ({e})"
        ))
    })
}

fn method_not_allowed() -> Reply {
    ApiError::new(
        405,
        "method.not.allowed",
        "HTTP method not allowed for this resource.",
    )
    .into()
}

fn segments(raw_path: &str) -> Result<Vec<String>, ApiError> {
    raw_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .map(Cow::into_owned)
                .map_err(|_| ApiError::bad_request("The path is not valid UTF-8 once decoded"))
        })
        .collect()
}

/// `POST /oauth/token` (client credentials grant, HTTP Basic client authentication).
pub(crate) fn login(shared: &Shared, method: &Method, headers: &HeaderMap, body: &[u8]) -> Reply {
    let oauth_error = |status: u16, error: &str, description: &str| {
        Reply::json(
            status,
            json!({"error": error, "description": description, "error_description": description}),
        )
    };
    if method != Method::POST {
        return oauth_error(405, "invalid_request", "method not allowed");
    }
    let creds = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_credentials);
    let mut auth = lock(&shared.auth);
    let Some(client) = creds.and_then(|(id, secret)| auth.authenticate(&id, &secret)) else {
        return oauth_error(401, "invalid_client", "client not found");
    };
    if content_type(headers) != "application/x-www-form-urlencoded" {
        return oauth_error(
            400,
            "invalid_request",
            "the request body must be application/x-www-form-urlencoded",
        );
    }
    let grant = form_urlencoded::parse(body)
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.into_owned());
    match grant.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(400, "unsupported_grant_type", "grant type not supported");
        }
        None => return oauth_error(400, "invalid_request", "grant_type is required"),
    }
    let ttl = shared.cfg.token_expires_in;
    let token = auth.issue(&client, ttl);
    Reply::json(
        200,
        json!({"access_token": token, "token_type": "bearer", "expires_in": ttl}),
    )
}

/// Routes an authenticated, admitted `/api` request.
pub(crate) fn api(shared: &Shared, req: &ApiRequest<'_>) -> Reply {
    let segs = match segments(req.raw_path) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let token = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    // Genesys checks permissions before anything else about the request: a client without
    // them learns nothing (403 even for a table or row that does not exist).
    if let Some(need) = permissions::required(req.method, &segs)
        && !lock(&shared.auth).permits(token, need)
    {
        return permissions::forbidden(need).into();
    }
    let q = Query::parse(req.query);
    let m = req.method;
    let max = shared.cfg.max_page_size;
    match segs.as_slice() {
        ["api", "v2", "tokens", "me"] => match *m {
            Method::GET => reply(token_me(shared, token)),
            Method::DELETE => {
                let token = req
                    .headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(bearer_token)
                    .unwrap_or_default();
                lock(&shared.auth).revoke(token);
                Reply::empty(200)
            }
            _ => method_not_allowed(),
        },
        ["api", "v2", "routing", "queues"] => match *m {
            Method::GET => reply(list_queues(shared, &q, max)),
            _ => method_not_allowed(),
        },
        ["api", "v2", "routing", "queues", id] => match *m {
            Method::GET => {
                let org = lock(&shared.org);
                match org.queue(id) {
                    Some(queue) => Reply::json(200, org.queue_json(queue)),
                    None => ApiError::not_found().into(),
                }
            }
            _ => method_not_allowed(),
        },
        ["api", "v2", "routing", "queues", id, "members"] => match *m {
            Method::GET => reply(list_members(shared, id, &q)),
            _ => method_not_allowed(),
        },
        ["api", "v2", "analytics", "queues", "observations", "query"] => match *m {
            Method::POST => reply(json_body(req).and_then(|body| {
                let r = lock(&shared.org).observe(&body)?;
                Ok(Reply::json(200, r))
            })),
            _ => method_not_allowed(),
        },
        ["api", "v2", "notifications", "channels"] => {
            let owner = lock(&shared.auth).client_id(token).to_owned();
            match *m {
                Method::POST => {
                    let body = lock(&shared.notifications)
                        .create_channel(&owner, tokio::time::Instant::now());
                    Reply::json(200, body)
                }
                Method::GET => Reply::json(200, lock(&shared.notifications).list_channels(&owner)),
                _ => method_not_allowed(),
            }
        }
        [
            "api",
            "v2",
            "notifications",
            "channels",
            id,
            "subscriptions",
        ] => {
            let owner = lock(&shared.auth).client_id(token).to_owned();
            match *m {
                Method::GET => reply(
                    lock(&shared.notifications)
                        .subscriptions(&owner, id)
                        .map(|v| Reply::json(200, v)),
                ),
                Method::PUT | Method::POST => reply(json_body(req).and_then(|body| {
                    let ignore_errors = q.bool("ignoreErrors", false)?;
                    let need = lock(&shared.notifications)
                        .topic_permission()
                        .map(str::to_owned);
                    let permitted = need
                        .as_deref()
                        .is_none_or(|p| lock(&shared.auth).permits(token, &[p]));
                    let org = lock(&shared.org);
                    let v = lock(&shared.notifications).subscribe(
                        notifications::Subscribe {
                            owner: &owner,
                            id,
                            body: &body,
                            replace: *m == Method::PUT,
                            permitted,
                            ignore_errors,
                        },
                        &org,
                        tokio::time::Instant::now(),
                    )?;
                    Ok(Reply::json(200, v))
                })),
                Method::DELETE => reply(
                    lock(&shared.notifications)
                        .unsubscribe_all(&owner, id)
                        .map(|()| Reply::empty(204)),
                ),
                _ => method_not_allowed(),
            }
        }
        ["api", "v2", "flows", "datatables"] => match *m {
            Method::GET => reply(list_tables(shared, &q, max)),
            Method::POST => reply(json_body(req).and_then(|body| {
                let mut org = lock(&shared.org);
                let id = org.create_table(&body)?;
                let t = org.table(&id)?;
                Ok(Reply::json(200, org.table_json(t, true)))
            })),
            _ => method_not_allowed(),
        },
        ["api", "v2", "flows", "datatables", id] => reply(table(shared, req, &q, id)),
        ["api", "v2", "flows", "datatables", id, "rows"] => match *m {
            Method::GET => reply(list_rows(shared, id, &q, max)),
            Method::POST => reply(json_body(req).and_then(|body| {
                let row = lock(&shared.org).insert_row(id, &body)?;
                Ok(Reply::json(200, row))
            })),
            _ => method_not_allowed(),
        },
        ["api", "v2", "flows", "datatables", id, "rows", key] => {
            reply(row(shared, req, &q, id, key))
        }
        [
            "api",
            "v2",
            "flows",
            "datatables",
            id,
            "import",
            "csv",
            "jobs",
        ] => match *m {
            Method::POST => reply(json_body(req).and_then(|body| {
                let mut org = lock(&shared.org);
                let job = import::create_job(&mut org, id, &body, &shared.upload_base)?;
                Ok(Reply::json(200, job))
            })),
            _ => method_not_allowed(),
        },
        ["api", "v2", "flows", "datatables", id, "import", "jobs"] => match *m {
            Method::GET => reply((|| {
                let (size, number) = q.paging(max)?;
                let jobs = import::list_jobs(&lock(&shared.org), id, &shared.upload_base)?;
                let path = format!("/api/v2/flows/datatables/{id}/import/jobs");
                Ok(Reply::json(200, listing(jobs, size, number, &path, &[])))
            })()),
            _ => method_not_allowed(),
        },
        [
            "api",
            "v2",
            "flows",
            "datatables",
            id,
            "import",
            "jobs",
            job,
        ] => match *m {
            Method::GET => reply(
                import::get_job(&lock(&shared.org), id, job, &shared.upload_base)
                    .map(|j| Reply::json(200, j)),
            ),
            _ => method_not_allowed(),
        },
        _ => ApiError::not_found().into(),
    }
}

fn token_me(shared: &Shared, token: Option<&str>) -> Result<Reply, ApiError> {
    let org_id = lock(&shared.org).org_id.clone();
    let client_id = lock(&shared.auth).client_id(token).to_owned();
    let org = json!({"id": org_id, "name": "Simulated Org", "selfUri": format!("/api/v2/organizations/{org_id}")});
    Ok(Reply::json(
        200,
        json!({
            "organization": org,
            "homeOrganization": org,
            "authorizedScope": ["analytics:readonly", "architect", "routing:readonly"],
            "OAuthClient": {
                "id": client_id,
                "name": "genesys-queue-sync (simulated)",
                "organization": org,
            },
        }),
    ))
}

fn list_queues(shared: &Shared, q: &Query, max: u32) -> Result<Reply, ApiError> {
    let (size, number) = q.paging(max)?;
    let descending = match q.get("sortOrder") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(ApiError::invalid_value(other, "sortOrder", "asc, desc")),
    };
    let filter = QueueFilter {
        name: q.get("name").map(str::to_owned),
        ids: q.all("id"),
        division_ids: q.all("divisionId"),
        descending,
    };
    let all = lock(&shared.org).list_queues(&filter);
    let carry = q.carry(&["name", "id", "divisionId", "sortOrder"]);
    Ok(Reply::json(
        200,
        listing(all, size, number, "/api/v2/routing/queues", &carry),
    ))
}

fn list_members(shared: &Shared, queue_id: &str, q: &Query) -> Result<Reply, ApiError> {
    let (size, number) = q.paging(MAX_MEMBERS_PAGE_SIZE.min(shared.cfg.max_page_size))?;
    let expand = q.all("expand");
    let org = lock(&shared.org);
    if org.queue(queue_id).is_none() {
        return Err(ApiError::not_found());
    }
    let all = org.member_entities(
        queue_id,
        expand.iter().any(|e| e == "presence"),
        expand.iter().any(|e| e == "routingStatus"),
    );
    let path = format!("/api/v2/routing/queues/{queue_id}/members");
    Ok(Reply::json(
        200,
        listing(all, size, number, &path, &q.carry(&["expand"])),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn encoded_slash_stays_in_one_segment() {
        let s = segments("/api/v2/flows/datatables/t/rows/a%20b%2Fc%25d%23e%20%C3%BC").unwrap();
        assert_eq!(s.last().unwrap(), "a b/c%d#e ü");
        assert_eq!(s.len(), 7);
    }

    #[test]
    fn listing_paging_fields() {
        let all: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let carry = vec![("name".to_owned(), "a b*".to_owned())];
        let v = listing(all.clone(), 2, 2, "/x", &carry);
        assert_eq!(v["entities"], json!([2, 3]));
        assert_eq!(v["pageCount"], 3);
        assert_eq!(v["total"], 5);
        assert_eq!(v["nextUri"], "/x?pageSize=2&pageNumber=3&name=a+b*");
        assert_eq!(v["previousUri"], "/x?pageSize=2&pageNumber=1&name=a+b*");
        let last = listing(all.clone(), 2, 3, "/x", &[]);
        assert!(last.get("nextUri").is_none());
        let empty = listing(Vec::new(), 25, 1, "/x", &[]);
        assert_eq!(empty["pageCount"], 0);
        assert_eq!(empty["entities"], json!([]));
        let beyond = listing(all, 2, 9, "/x", &[]);
        assert_eq!(beyond["entities"], json!([]));
    }
}
