//! Permissions: what each endpoint requires (the `x-inin-requires-permissions` of the
//! official API spec), the grants of an OAuth client's roles, and Genesys' 403 answer.
//!
//! Every endpoint the simulator serves lists its permissions with type ANY: one of them is
//! enough. A request without any of them answers 403 `missing.permissions` (one permission
//! listed) or `missing.any.permissions` (several), the two bodies Genesys documents.
//! Notifications and `/api/v2/tokens/me` require none.

use std::collections::BTreeSet;

use axum::http::Method;

use crate::wire::ApiError;

/// The permissions of one endpoint; any one of them admits the request.
pub(crate) type AnyOf = &'static [&'static str];

const QUEUE_VIEW: AnyOf = &["routing:queue:view"];
const MEMBERS_VIEW: AnyOf = &[
    "routing:queue:view",
    "routing:queue:edit",
    "routing:queue:readonly",
    "routing:queueMember:manage",
];
const OBSERVATIONS: AnyOf = &["analytics:queueObservation:view"];
const TABLE_VIEW: AnyOf = &["architect:datatable:view"];
const TABLE_ADD: AnyOf = &["architect:datatable:add"];
const TABLE_EDIT: AnyOf = &["architect:datatable:edit"];
const TABLE_DELETE: AnyOf = &["architect:datatable:delete"];
const ROW_VIEW: AnyOf = &["architect:datatable:view", "architect:datatableRow:view"];
const ROW_ADD: AnyOf = &["architect:datatable:add", "architect:datatableRow:add"];
const ROW_EDIT: AnyOf = &["architect:datatable:edit", "architect:datatableRow:edit"];
const ROW_DELETE: AnyOf = &[
    "architect:datatable:delete",
    "architect:datatableRow:delete",
];
const IMPORT_CREATE: AnyOf = &["architect:datatable:edit", "architect:datatableRow:add"];
const IMPORT_LIST: AnyOf = &["architect:datatable:edit", "architect:datatableRow:view"];
const IMPORT_GET: AnyOf = &["architect:datatable:view", "architect:datatableRow:view"];

/// Every permission some endpoint accepts: what a client is granted by default.
pub(crate) fn all() -> BTreeSet<String> {
    [
        QUEUE_VIEW,
        MEMBERS_VIEW,
        OBSERVATIONS,
        TABLE_VIEW,
        TABLE_ADD,
        TABLE_EDIT,
        TABLE_DELETE,
        ROW_VIEW,
        ROW_ADD,
        ROW_EDIT,
        ROW_DELETE,
        IMPORT_CREATE,
        IMPORT_LIST,
        IMPORT_GET,
    ]
    .iter()
    .flat_map(|p| p.iter())
    .map(|p| (*p).to_owned())
    .collect()
}

/// The permissions a request needs, by method and decoded path segments; `None` when the
/// endpoint requires none (or does not exist: routing answers 404 or 405 then).
pub(crate) fn required(method: &Method, segs: &[&str]) -> Option<AnyOf> {
    let m = method.as_str();
    let need = match (m, segs) {
        ("GET", ["api", "v2", "routing", "queues"] | ["api", "v2", "routing", "queues", _]) => {
            QUEUE_VIEW
        }
        ("GET", ["api", "v2", "routing", "queues", _, "members"]) => MEMBERS_VIEW,
        ("POST", ["api", "v2", "analytics", "queues", "observations", "query"]) => OBSERVATIONS,
        ("GET", ["api", "v2", "flows", "datatables"] | ["api", "v2", "flows", "datatables", _]) => {
            TABLE_VIEW
        }
        ("POST", ["api", "v2", "flows", "datatables"]) => TABLE_ADD,
        ("PUT", ["api", "v2", "flows", "datatables", _]) => TABLE_EDIT,
        ("DELETE", ["api", "v2", "flows", "datatables", _]) => TABLE_DELETE,
        ("GET", ["api", "v2", "flows", "datatables", _, "rows", ..]) => ROW_VIEW,
        ("POST", ["api", "v2", "flows", "datatables", _, "rows"]) => ROW_ADD,
        ("PUT", ["api", "v2", "flows", "datatables", _, "rows", _]) => ROW_EDIT,
        ("DELETE", ["api", "v2", "flows", "datatables", _, "rows", _]) => ROW_DELETE,
        (
            "POST",
            [
                "api",
                "v2",
                "flows",
                "datatables",
                _,
                "import",
                "csv",
                "jobs",
            ],
        )
        | ("POST", ["api", "v2", "flows", "datatables", _, "import", "jobs"]) => IMPORT_CREATE,
        ("GET", ["api", "v2", "flows", "datatables", _, "import", "jobs"]) => IMPORT_LIST,
        ("GET", ["api", "v2", "flows", "datatables", _, "import", "jobs", _]) => IMPORT_GET,
        _ => return None,
    };
    Some(need)
}

/// Genesys' 403 for a request lacking the one permission `p`.
pub(crate) fn forbidden_one(p: &str) -> ApiError {
    ApiError::new(
        403,
        "missing.permissions",
        format!(
            "Unable to perform the requested action. You are missing the following permission(s): [{p}]"
        ),
    )
}

/// Genesys' 403 for a request holding none of `need`.
pub(crate) fn forbidden(need: AnyOf) -> ApiError {
    let list = need.join(", ");
    if need.len() == 1 {
        ApiError::new(
            403,
            "missing.permissions",
            format!(
                "Unable to perform the requested action. You are missing the following permission(s): [{list}]"
            ),
        )
    } else {
        ApiError::new(
            403,
            "missing.any.permissions",
            format!(
                "Unable to perform the requested action. You must have at least one of the following permissions assigned: [{list}]"
            ),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_tables_follow_the_spec() {
        let row = ["api", "v2", "flows", "datatables", "t", "rows", "k"];
        assert_eq!(required(&Method::PUT, &row), Some(ROW_EDIT));
        assert_eq!(required(&Method::DELETE, &row), Some(ROW_DELETE));
        assert_eq!(required(&Method::GET, &row), Some(ROW_VIEW));
        assert_eq!(required(&Method::GET, &row[..6]), Some(ROW_VIEW));
        assert_eq!(required(&Method::POST, &row[..6]), Some(ROW_ADD));
        assert_eq!(required(&Method::GET, &row[..5]), Some(TABLE_VIEW));
        assert_eq!(
            required(&Method::POST, &["api", "v2", "notifications", "channels"]),
            None
        );
        assert_eq!(required(&Method::GET, &["api", "v2", "tokens", "me"]), None);
    }

    #[test]
    fn bodies_are_the_documented_ones() {
        let one = forbidden(OBSERVATIONS);
        assert_eq!(one.code, "missing.permissions");
        assert!(
            one.message.ends_with(
                "missing the following permission(s): [analytics:queueObservation:view]"
            )
        );
        let any = forbidden(ROW_EDIT);
        assert_eq!(any.code, "missing.any.permissions");
        assert!(any.message.contains(
            "at least one of the following permissions assigned: [architect:datatable:edit, architect:datatableRow:edit]"
        ));
    }
}
