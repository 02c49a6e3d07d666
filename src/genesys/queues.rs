//! Routing queues: resolving configured names and ids (`GET /api/v2/routing/queues`).

use std::collections::HashMap;

use serde::Deserialize;

use super::{ApiError, Client, Request};

const ENDPOINT: &str = "routing_queues";
/// `GET /api/v2/routing/queues/{id}`.
const ENDPOINT_ONE: &str = "routing_queue";
const PAGE_SIZE: u32 = 100;
/// Ids per request when looking queues up by id: one page (100, the listing's page
/// size) answers them all, and the URL stays near 4 KiB (an id is 36 characters,
/// `&id=` adds 4), well under the 8 KiB that HTTP front ends commonly accept. Genesys
/// documents no maximum for the `id` filter.
pub const IDS_PER_REQUEST: usize = 100;
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
    #[serde(default)]
    total: Option<u64>,
}

/// The queues a listing returned, and whether the listing can be trusted to be complete.
///
/// Offset paging is not a snapshot: a queue deleted (or created) between two page
/// requests shifts the rest by one, so a queue can be skipped, and a page can come back
/// 200 but empty. An incomplete listing must never make a live queue look deleted, so
/// each listing is checked against its own `total`: every page must announce the same
/// total, and the distinct queues received must number exactly that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    pub queues: Vec<Queue>,
    /// Why the listing is not trusted to hold every queue it should; None when it is.
    pub doubt: Option<String>,
}

impl Listed {
    pub fn complete(&self) -> bool {
        self.doubt.is_none()
    }
}

/// Tracks one paged listing's consistency, page by page: pure, so it is unit-tested.
#[derive(Debug, Default)]
struct Pages {
    queues: Vec<Queue>,
    seen: std::collections::HashSet<String>,
    totals: Vec<u64>,
    empty_early: bool,
    capped: bool,
}

impl Pages {
    /// Adds one page; returns whether another should be requested.
    fn add(&mut self, page: u32, listing: Listing) -> bool {
        let got = listing.entities.len();
        if let Some(t) = listing.total {
            self.totals.push(t);
        }
        for q in listing.entities {
            if self.seen.insert(q.id.clone()) {
                self.queues.push(q);
            }
        }
        let more = super::has_next_page(page, listing.page_count, got, PAGE_SIZE, MAX_PAGES);
        if !more {
            // A page that came back empty although pageCount announced it.
            self.empty_early = got == 0 && listing.page_count.is_some_and(|pc| page <= pc);
            self.capped = page >= MAX_PAGES && listing.page_count.is_some_and(|pc| page < pc);
        }
        more
    }

    fn finish(self) -> Listed {
        let distinct = self.queues.len() as u64;
        let doubt = if self.capped {
            Some(format!("the listing announced more than {MAX_PAGES} pages"))
        } else if self.empty_early {
            Some("a page announced by the listing came back empty".to_owned())
        } else if let Some(first) = self.totals.first().copied()
            && self.totals.iter().any(|t| *t != first)
        {
            Some(format!(
                "the total changed between pages ({first} then {}): queues were added or deleted while listing",
                self.totals.last().copied().unwrap_or(first)
            ))
        } else if let Some(total) = self.totals.first().copied()
            && total != distinct
        {
            Some(format!(
                "the listing's total says {total} queues but {distinct} distinct queues came back"
            ))
        } else {
            None
        };
        Listed {
            queues: self.queues,
            doubt,
        }
    }
}

/// Every queue the listing returns for the given filters, all pages, with its check.
async fn list(client: &Client, filters: &[(&'static str, String)]) -> Result<Listed, ApiError> {
    let mut pages = Pages::default();
    let mut page = 1;
    loop {
        let mut req = Request::get(ENDPOINT, "/api/v2/routing/queues")
            .query("pageSize", PAGE_SIZE.to_string())
            .query("pageNumber", page.to_string());
        for (k, v) in filters {
            req = req.query(k, v.clone());
        }
        let listing: Listing = client.send_json(req).await?;
        if !pages.add(page, listing) {
            return Ok(pages.finish());
        }
        page += 1;
    }
}

/// [`list`], once more when the first listing is not consistent with itself (a queue
/// deleted between two page requests is a passing race): costs one more listing only
/// when something was off.
async fn list_checked(
    client: &Client,
    filters: &[(&'static str, String)],
) -> Result<Listed, ApiError> {
    let first = list(client, filters).await?;
    let Some(doubt) = &first.doubt else {
        return Ok(first);
    };
    tracing::warn!(doubt = %doubt, "the queue listing is not consistent with itself; listing again");
    let second = list(client, filters).await?;
    if let Some(doubt) = &second.doubt {
        tracing::warn!(doubt = %doubt, "the queue listing is still not consistent; no queue counts as gone because of it");
    }
    Ok(second)
}

/// The queue named exactly `name` (the API's name filter also matches case variants).
pub async fn find_by_name(client: &Client, name: &str) -> Result<Option<Queue>, ApiError> {
    Ok(lookup_name(client, name).await?.0)
}

/// [`find_by_name`], and whether the lookup's listing was consistent with itself (when
/// it was not, "not found" is not to be believed).
pub async fn lookup_name(client: &Client, name: &str) -> Result<(Option<Queue>, bool), ApiError> {
    let found = list_checked(client, &[("name", name.to_owned())]).await?;
    let complete = found.complete();
    Ok((pick_exact(found.queues, name), complete))
}

/// Every queue in the org (all pages): cheaper than one lookup per name for long lists.
pub async fn list_all(client: &Client) -> Result<Listed, ApiError> {
    list_checked(client, &[]).await
}

/// The queue with this id, `None` when Genesys answers 404 (it is gone, or not visible
/// to this client): the one answer that confirms a queue is gone.
pub async fn get_by_id(client: &Client, id: &str) -> Result<Option<Queue>, ApiError> {
    let req = Request::get(
        ENDPOINT_ONE,
        format!("/api/v2/routing/queues/{}", super::encode_segment(id)),
    );
    match client.send_json::<Queue>(req).await {
        Ok(q) => Ok(Some(q)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
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

/// [`find_by_ids`] with up to `concurrency` requests in flight (each still goes through
/// the client's budget).
pub async fn find_by_ids_concurrently(
    client: &Client,
    ids: &[String],
    concurrency: usize,
) -> Result<Listed, ApiError> {
    let mut out = Listed::default();
    let chunks: Vec<Vec<String>> = ids
        .chunks(IDS_PER_REQUEST)
        .map(<[String]>::to_vec)
        .collect();
    for wave in chunks.chunks(concurrency.max(1)) {
        let mut lookups = Vec::with_capacity(wave.len());
        for chunk in wave {
            lookups.push(find_by_ids(client, chunk));
        }
        for got in futures_util::future::join_all(lookups).await {
            let got = got?;
            out.queues.extend(got.queues);
            out.doubt = out.doubt.or(got.doubt);
        }
    }
    Ok(out)
}

/// The queues among `ids` that exist, and whether every lookup's listing was complete.
pub async fn find_by_ids(client: &Client, ids: &[String]) -> Result<Listed, ApiError> {
    let mut out = Listed::default();
    for chunk in ids.chunks(IDS_PER_REQUEST) {
        let filters: Vec<(&'static str, String)> =
            chunk.iter().map(|id| ("id", id.clone())).collect();
        let got = list_checked(client, &filters).await?;
        out.queues.extend(got.queues);
        out.doubt = out.doubt.or(got.doubt);
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

    fn page(ids: &[&str], total: u64, page_count: u32) -> Listing {
        Listing {
            entities: ids.iter().map(|i| q(i, i)).collect(),
            page_count: Some(page_count),
            total: Some(total),
        }
    }

    fn run(pages: Vec<Listing>) -> Listed {
        let mut p = Pages::default();
        for (i, l) in pages.into_iter().enumerate() {
            let more = p.add(i as u32 + 1, l);
            if !more {
                break;
            }
        }
        p.finish()
    }

    fn full(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn a_consistent_listing_is_complete() {
        let a = full("a", 100);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let l = run(vec![page(&a, 101, 2), page(&["b"], 101, 2)]);
        assert_eq!(l.queues.len(), 101);
        assert!(l.complete(), "{:?}", l.doubt);
    }

    #[test]
    fn a_queue_skipped_by_offset_paging_makes_the_listing_untrusted() {
        // 201 queues; one on page 1 is deleted before page 2 is read: queue 100 moves to
        // page 1, so nobody sees it, and page 2 announces a total of 200.
        let p1 = full("q", 100);
        let p2: Vec<String> = (101..201).map(|i| format!("q{i}")).collect();
        let l = run(vec![
            page(&p1.iter().map(String::as_str).collect::<Vec<_>>(), 201, 3),
            page(&p2.iter().map(String::as_str).collect::<Vec<_>>(), 200, 2),
        ]);
        assert!(!l.complete());
        assert!(l.doubt.unwrap().contains("total changed"));
    }

    #[test]
    fn an_empty_page_or_a_short_count_makes_the_listing_untrusted() {
        let p1 = full("q", 100);
        let p1: Vec<&str> = p1.iter().map(String::as_str).collect();
        // Page 2 of 2 answered 200 but empty.
        let l = run(vec![page(&p1, 150, 2), page(&[], 150, 2)]);
        assert!(!l.complete(), "empty page trusted");
        // One page whose entities disagree with its own total.
        let l = run(vec![page(&p1[..40], 41, 1)]);
        assert!(l.doubt.unwrap().contains("41"));
        // Duplicates (a queue shifted onto the next page) do not count twice.
        let l = run(vec![page(&p1, 101, 2), page(&["q99"], 101, 2)]);
        assert!(!l.complete(), "a duplicate hid a skipped queue");
        let l = run(vec![page(&p1, 101, 2), page(&["q99", "x"], 101, 2)]);
        assert!(l.complete(), "{:?}", l.doubt);
        assert_eq!(l.queues.len(), 101);
        // An empty org is a complete, empty listing.
        assert!(run(vec![page(&[], 0, 0)]).complete());
    }
}
