//! Routing queues: resolving configured names and ids (`GET /api/v2/routing/queues`).

use std::collections::HashMap;

use serde::Deserialize;

use super::{ApiError, Client, Request};

const ENDPOINT: &str = "routing_queues";
const PAGE_SIZE: u32 = 100;
/// Ids per request when looking queues up by id; keeps the URL well under 8 KiB.
const IDS_PER_REQUEST: usize = 50;
/// A guard against a server that keeps announcing more pages.
const MAX_PAGES: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Queue {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub division: Option<Division>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Division {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    #[serde(default)]
    entities: Vec<Queue>,
    #[serde(default)]
    page_count: Option<u32>,
}

/// Every queue the listing returns for the given filters, all pages.
async fn list(client: &Client, filters: &[(&'static str, String)]) -> Result<Vec<Queue>, ApiError> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let mut req = Request::get(ENDPOINT, "/api/v2/routing/queues")
            .query("pageSize", PAGE_SIZE.to_string())
            .query("pageNumber", page.to_string());
        for (k, v) in filters {
            req = req.query(k, v.clone());
        }
        let listing: Listing = client.send_json(req).await?;
        let got = listing.entities.len();
        out.extend(listing.entities);
        if !super::has_next_page(page, listing.page_count, got, PAGE_SIZE, MAX_PAGES) {
            return Ok(out);
        }
        page += 1;
    }
}

/// The queue named exactly `name` (the API's name filter also matches case variants).
pub async fn find_by_name(client: &Client, name: &str) -> Result<Option<Queue>, ApiError> {
    let found = list(client, &[("name", name.to_owned())]).await?;
    Ok(pick_exact(found, name))
}

/// Every queue in the org (all pages): cheaper than one lookup per name for long lists.
pub async fn list_all(client: &Client) -> Result<Vec<Queue>, ApiError> {
    list(client, &[]).await
}

/// Resolves many names against one listing of the org's queues.
pub fn match_names<'a>(
    all: &[Queue],
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<(String, Option<Queue>)> {
    let mut by_lower: HashMap<String, Vec<Queue>> = HashMap::new();
    for q in all {
        by_lower
            .entry(q.name.to_lowercase())
            .or_default()
            .push(q.clone());
    }
    names
        .into_iter()
        .map(|n| {
            let found = by_lower.get(&n.to_lowercase()).cloned().unwrap_or_default();
            (n.to_owned(), pick_exact(found, n))
        })
        .collect()
}

fn pick_exact(found: Vec<Queue>, name: &str) -> Option<Queue> {
    if let Some(q) = found.iter().find(|q| q.name == name) {
        return Some(q.clone());
    }
    let mut ci = found
        .into_iter()
        .filter(|q| q.name.eq_ignore_ascii_case(name));
    match (ci.next(), ci.next()) {
        (Some(q), None) => Some(q),
        _ => None,
    }
}

/// The queues among `ids` that exist.
pub async fn find_by_ids(client: &Client, ids: &[String]) -> Result<Vec<Queue>, ApiError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(IDS_PER_REQUEST) {
        let filters: Vec<(&'static str, String)> =
            chunk.iter().map(|id| ("id", id.clone())).collect();
        out.extend(list(client, &filters).await?);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn q(id: &str, name: &str) -> Queue {
        Queue {
            id: id.into(),
            name: name.into(),
            division: None,
        }
    }

    #[test]
    fn exact_name_wins_over_case_variants() {
        let found = vec![q("1", "sales"), q("2", "Sales")];
        assert_eq!(pick_exact(found, "Sales").unwrap().id, "2");
    }

    #[test]
    fn ambiguous_case_variants_resolve_to_nothing() {
        assert_eq!(
            pick_exact(vec![q("1", "sales"), q("2", "SALES")], "Sales"),
            None
        );
        assert_eq!(pick_exact(vec![q("1", "sales")], "Sales").unwrap().id, "1");
        assert_eq!(pick_exact(vec![q("1", "Sales EU")], "Sales"), None);
    }

    #[test]
    fn many_names_match_against_one_listing() {
        let all = vec![
            q("1", "Sales"),
            q("2", "sales"),
            q("3", "Support"),
            q("4", "Billing"),
        ];
        let got = match_names(&all, ["Sales", "SUPPORT", "Nope"]);
        assert_eq!(got[0].1.as_ref().unwrap().id, "1");
        assert_eq!(got[1].1.as_ref().unwrap().id, "3");
        assert_eq!(got[2].1, None);
    }

    #[test]
    fn listing_tolerates_missing_and_extra_fields() {
        let l: Listing = serde_json::from_str(
            r#"{"entities":[{"id":"a","name":"A","memberCount":3,"division":{"id":"d","name":"Home","selfUri":"x"}}],"total":1}"#,
        )
        .unwrap();
        assert_eq!(l.entities[0].division.as_ref().unwrap().name, "Home");
        assert_eq!(l.page_count, None);
    }
}
