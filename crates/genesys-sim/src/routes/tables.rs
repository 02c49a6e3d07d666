//! The data table routes: tables, rows (import jobs are routed to `tables::import`).

use axum::http::Method;
use serde_json::{Value, json};

use super::{ApiRequest, Query, Reply, json_body, listing, method_not_allowed};
use crate::tables::TableFilter;
use crate::wire::ApiError;
use crate::{Shared, lock};

pub(super) fn list_tables(shared: &Shared, q: &Query, max: u32) -> Result<Reply, ApiError> {
    let (size, number) = q.paging(max)?;
    let with_schema = expand_schema(q)?;
    let sort_by_name = match q.get("sortBy") {
        None | Some("id") => false,
        Some("name") => true,
        Some(other) => return Err(ApiError::invalid_value(other, "sortBy", "id, name")),
    };
    let filter = TableFilter {
        name: q.get("name").map(str::to_owned),
        division_ids: q.all("divisionId"),
        sort_by_name,
        descending: descending(q)?,
    };
    let org = lock(&shared.org);
    let all: Vec<Value> = org
        .list_tables(&filter)
        .into_iter()
        .map(|t| org.table_json(t, with_schema))
        .collect();
    let carry = q.carry(&["name", "expand", "sortBy", "sortOrder", "divisionId"]);
    Ok(Reply::json(
        200,
        listing(all, size, number, "/api/v2/flows/datatables", &carry),
    ))
}

fn expand_schema(q: &Query) -> Result<bool, ApiError> {
    match q.get("expand") {
        None | Some("") => Ok(false),
        Some("schema") => Ok(true),
        Some(other) => Err(ApiError::invalid_value(other, "expand", "schema")),
    }
}

fn descending(q: &Query) -> Result<bool, ApiError> {
    match q.get("sortOrder") {
        None => Ok(false),
        Some(s) if s.eq_ignore_ascii_case("ascending") || s.eq_ignore_ascii_case("asc") => {
            Ok(false)
        }
        Some(s) if s.eq_ignore_ascii_case("descending") || s.eq_ignore_ascii_case("desc") => {
            Ok(true)
        }
        Some(other) => Err(ApiError::invalid_value(
            other,
            "sortOrder",
            "ascending, descending",
        )),
    }
}

pub(super) fn table(
    shared: &Shared,
    req: &ApiRequest<'_>,
    q: &Query,
    id: &str,
) -> Result<Reply, ApiError> {
    match *req.method {
        Method::GET => {
            let with_schema = expand_schema(q)?;
            let org = lock(&shared.org);
            let t = org.table(id)?;
            Ok(Reply::json(200, org.table_json(t, with_schema)))
        }
        Method::PUT => {
            let with_schema = expand_schema(q)?;
            let body = json_body(req)?;
            let mut org = lock(&shared.org);
            org.update_table(id, &body)?;
            let t = org.table(id)?;
            Ok(Reply::json(200, org.table_json(t, with_schema)))
        }
        Method::DELETE => {
            lock(&shared.org).delete_table(id)?;
            Ok(Reply::empty(204))
        }
        _ => Ok(method_not_allowed()),
    }
}

pub(super) fn list_rows(shared: &Shared, id: &str, q: &Query, max: u32) -> Result<Reply, ApiError> {
    let (size, number) = q.paging(max)?;
    let brief = q.bool("showbrief", true)?;
    let desc = descending(q)?;
    let org = lock(&shared.org);
    let t = org.table(id)?;
    let mut all: Vec<Value> = t
        .rows
        .iter()
        .map(|(k, r)| {
            if brief {
                json!({ "key": k })
            } else {
                Value::Object(r.clone())
            }
        })
        .collect();
    if desc {
        all.reverse();
    }
    let path = format!("/api/v2/flows/datatables/{id}/rows");
    Ok(Reply::json(
        200,
        listing(
            all,
            size,
            number,
            &path,
            &q.carry(&["showbrief", "sortOrder"]),
        ),
    ))
}

pub(super) fn row(
    shared: &Shared,
    req: &ApiRequest<'_>,
    q: &Query,
    id: &str,
    key: &str,
) -> Result<Reply, ApiError> {
    match *req.method {
        Method::GET => {
            // The API documents showbrief as defaulting to true for a single row as well.
            let brief = q.bool("showbrief", true)?;
            let org = lock(&shared.org);
            let r = org.get_row(id, key)?;
            Ok(Reply::json(
                200,
                if brief {
                    json!({ "key": key })
                } else {
                    Value::Object(r.clone())
                },
            ))
        }
        Method::PUT => {
            let body = json_body(req)?;
            let r = lock(&shared.org).replace_row(id, key, &body)?;
            Ok(Reply::json(200, r))
        }
        Method::DELETE => {
            lock(&shared.org).delete_row(id, key)?;
            Ok(Reply::empty(204))
        }
        _ => Ok(method_not_allowed()),
    }
}
