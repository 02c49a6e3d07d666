//! What every API answer shares: the ErrorBody, ids and timestamps as Genesys writes them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// An error as the API reports it (ErrorBody).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad.request", message)
    }

    pub(crate) fn invalid_value(value: &str, field: &str, allowed: &str) -> ApiError {
        ApiError::new(
            400,
            "invalid.value",
            format!(
                "Value [{value}] is not valid for field type [{field}]. Allowable values are: {allowed}"
            ),
        )
    }

    pub(crate) fn not_found() -> ApiError {
        ApiError::new(404, "not.found", "The requested resource was not found.")
    }

    pub(crate) fn schema(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "flows.datatables.schema.exception", message)
    }

    pub(crate) fn syntax(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "flows.datatables.syntax.error", message)
    }

    pub(crate) fn table_not_found(id: &str) -> ApiError {
        ApiError::new(
            404,
            "flows.datatables.table.not.found",
            format!("The datatable could not be found. (datatableId: {id})"),
        )
    }

    pub(crate) fn row_not_found(key: &str) -> ApiError {
        ApiError::new(
            404,
            "flows.datatables.row.not.found",
            format!("The datatable row could not be found. (rowId: {key})"),
        )
    }

    /// The ErrorBody JSON; `context_id` is the response's correlation id.
    pub(crate) fn body(&self, context_id: Option<&str>) -> Value {
        let mut body = json!({
            "message": self.message,
            "code": self.code,
            "status": self.status,
            "messageParams": {},
            "details": [],
            "errors": [],
        });
        if let (Some(ctx), Some(obj)) = (context_id, body.as_object_mut()) {
            obj.insert("contextId".to_owned(), Value::String(ctx.to_owned()));
        }
        body
    }
}

/// A random version-4 UUID, the form every Genesys id takes.
pub(crate) fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{byte:02x}"));
    }
    s
}

pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
