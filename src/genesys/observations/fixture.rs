//! One observation answer for the unit tests of the parser and of the columns computed
//! from it: every shape Genesys documents (user metrics by queue, conversation metrics by
//! queue and media type, several organization presences under one system presence, one
//! presence id the mappings do not name, detail observations out of order and truncated,
//! `data` before `group`, a media type the daemon does not know, a queue not asked for).

pub(crate) const ANSWER: &str = r#"{
  "systemToOrganizationMappings": {"OFFLINE": ["off"], "AVAILABLE": ["av1", "av2"], "ON_QUEUE": ["oq"], "BREAK": ["br1", "br2"]},
  "results": [
    {"group": {"queueId": "q1"}, "data": [
      {"metric": "oOnQueueUsers", "qualifier": "IDLE", "stats": {"count": 2}},
      {"metric": "oOnQueueUsers", "qualifier": "INTERACTING", "stats": {"count": 3}},
      {"metric": "oOnQueueUsers", "qualifier": "NOT_RESPONDING", "stats": {"count": 1}},
      {"metric": "oUserPresences", "qualifier": "oq", "stats": {"count": 6}},
      {"metric": "oUserPresences", "qualifier": "av2", "stats": {"count": 1}},
      {"metric": "oUserPresences", "qualifier": "br1", "stats": {"count": 2}},
      {"metric": "oUserPresences", "qualifier": "br2", "stats": {"count": 1}},
      {"metric": "oUserPresences", "qualifier": "custom", "stats": {"count": 1}},
      {"metric": "oUserPresences", "qualifier": "off", "stats": {"count": 9}},
      {"metric": "oOffQueueUsers", "qualifier": "br1", "stats": {"count": 2}},
      {"metric": "oOffQueueUsers", "qualifier": "av2", "stats": {"count": 1}},
      {"metric": "oMemberUsers", "stats": {"count": 19}}]},
    {"data": [
      {"metric": "oWaiting", "stats": {"count": 4}, "truncated": true, "observations": [
        {"observationDate": "2026-12-02T10:00:05.000Z", "conversationId": "c2"},
        {"observationDate": "2026-12-02T10:00:00.000Z", "conversationId": "c1"}]},
      {"metric": "oAlerting", "stats": {"count": 1}}],
     "group": {"queueId": "q1", "mediaType": "voice"}},
    {"group": {"queueId": "q1", "mediaType": "chat"}, "data": [{"metric": "oWaiting", "stats": {"count": 1}}]},
    {"group": {"queueId": "q1", "mediaType": "email"}, "data": [
      {"metric": "oWaiting", "stats": {"count": 2}, "observations": [{"observationDate": "2026-12-02T09:58:00.000Z"}]}]},
    {"group": {"queueId": "q1", "mediaType": "callback"}, "data": [{"metric": "oWaiting", "stats": {"count": 1}}]},
    {"group": {"queueId": "q1", "mediaType": "newmedia"}, "data": [{"metric": "oAlerting", "stats": {"count": 1}}]},
    {"group": {"queueId": "q2"}, "data": [{"metric": "oMemberUsers", "stats": {"count": 0}}]},
    {"group": {"queueId": "other"}, "data": [{"metric": "oWaiting", "stats": {"count": 7}}]}
  ]}"#;
