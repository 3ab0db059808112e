//! Cross-crate end-to-end tests for agui-server; see `tests/*.rs`. The Node suites (the official
//! AG-UI clients, the test OpenID provider) live in `conformance/` and `idp/` beside this crate.
//! `src/bin/github-standin.rs` runs agui-auth's local GitHub (`testing::GitHubStandIn`) as a
//! process for those suites, so no test reaches github.com.
