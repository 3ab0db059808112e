//! [`LimitsPolicy`]: the per-principal limits, with defaults and per-role overrides.
//!
//! ```toml
//! [limits]
//! runs_per_minute = 30         # token-bucket refill; 0 = no rate limit
//! burst = 10                   # bucket size: runs allowed back to back
//! max_concurrent_streams = 4   # open streams per principal; 0 = no cap
//!
//! [limits.roles.admin]
//! runs_per_minute = 0
//! max_concurrent_streams = 20
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Per-principal limits: defaults plus overrides by role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsPolicy {
    /// New runs per minute (the bucket's refill rate). `0`: no rate limit.
    pub runs_per_minute: u32,
    /// Bucket capacity: how many runs may start back to back. `0` means `runs_per_minute`.
    pub burst: u32,
    /// Streams one principal may have open at once. `0`: no cap.
    pub max_concurrent_streams: u32,
    /// Overrides by role name (from the principal's mapped roles).
    pub roles: BTreeMap<String, RoleLimits>,
}

impl Default for LimitsPolicy {
    fn default() -> Self {
        Self {
            runs_per_minute: 30,
            burst: 10,
            max_concurrent_streams: 4,
            roles: BTreeMap::new(),
        }
    }
}

/// The overrides of one role (`[limits.roles.<role>]`); unset fields keep the default, unknown
/// keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleLimits {
    /// Overrides [`LimitsPolicy::runs_per_minute`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs_per_minute: Option<u32>,
    /// Overrides [`LimitsPolicy::burst`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Overrides [`LimitsPolicy::max_concurrent_streams`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<u32>,
}

/// The limits that apply to one principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// Refill per minute; `0` = unlimited.
    pub runs_per_minute: u32,
    /// Bucket capacity (at least 1 when rate limited).
    pub burst: u32,
    /// Concurrent streams; `0` = unlimited.
    pub max_concurrent_streams: u32,
}

impl LimitsPolicy {
    /// The limits for a principal with `roles`. When several of its roles have overrides, each
    /// field takes the most generous value among them (a role grants, it never restricts
    /// another role); roles without overrides are ignored.
    pub fn effective(&self, roles: &[String]) -> EffectiveLimits {
        let overrides: Vec<&RoleLimits> = roles
            .iter()
            .filter_map(|role| self.roles.get(role))
            .collect();
        let pick = |default: u32, field: fn(&RoleLimits) -> Option<u32>| {
            let set: Vec<u32> = overrides.iter().filter_map(|o| field(o)).collect();
            if set.is_empty() {
                default
            } else {
                set.into_iter().reduce(most_generous).unwrap_or(default)
            }
        };
        let runs_per_minute = pick(self.runs_per_minute, |o| o.runs_per_minute);
        let burst = pick(self.burst, |o| o.burst);
        EffectiveLimits {
            runs_per_minute,
            burst: if burst == 0 {
                runs_per_minute.max(1)
            } else {
                burst
            },
            max_concurrent_streams: pick(self.max_concurrent_streams, |o| o.max_concurrent_streams),
        }
    }
}

/// `0` means unlimited, so it beats any number.
fn most_generous(a: u32, b: u32) -> u32 {
    if a == 0 || b == 0 { 0 } else { a.max(b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LimitsPolicy {
        toml::from_str(
            r#"
            runs_per_minute = 6
            burst = 2
            max_concurrent_streams = 1
            [roles.pro]
            runs_per_minute = 60
            max_concurrent_streams = 3
            [roles.admin]
            runs_per_minute = 0
            "#,
        )
        .unwrap()
    }

    #[test]
    fn defaults_apply_without_matching_roles() {
        let e = policy().effective(&["viewer".to_owned()]);
        assert_eq!(
            e,
            EffectiveLimits {
                runs_per_minute: 6,
                burst: 2,
                max_concurrent_streams: 1
            }
        );
    }

    #[test]
    fn role_overrides_replace_only_their_fields() {
        let e = policy().effective(&["pro".to_owned()]);
        assert_eq!(
            e,
            EffectiveLimits {
                runs_per_minute: 60,
                burst: 2,
                max_concurrent_streams: 3
            }
        );
    }

    #[test]
    fn several_roles_take_the_most_generous_value_and_zero_is_unlimited() {
        let e = policy().effective(&["pro".to_owned(), "admin".to_owned()]);
        assert_eq!(e.runs_per_minute, 0);
        assert_eq!(e.max_concurrent_streams, 3);
    }

    #[test]
    fn empty_config_uses_defaults() {
        let p: LimitsPolicy = toml::from_str("").unwrap();
        assert_eq!(p, LimitsPolicy::default());
    }
}
