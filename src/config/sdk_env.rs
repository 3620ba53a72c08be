//! Targets that sign in with the SDK environment variables (`sdk_env`, or
//! the default chain of a target without `credentials`) may leave out
//! `project_id`: it is then taken from `HUAWEICLOUD_SDK_PROJECT_ID` when the
//! file is loaded, as the official SDKs do.

use std::collections::BTreeMap;

use super::reader::TableReader;
use super::CredentialSpec;

/// The variable a missing `project_id` is taken from.
pub const PROJECT_ID_ENV: &str = "HUAWEICLOUD_SDK_PROJECT_ID";

/// How a target signs in, as far as `project_id` is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// `credentials` names an `sdk_env` entry.
    SdkEnv,
    /// No `credentials`: the default chain.
    DefaultChain,
    /// Any other credential type: `project_id` is required.
    None,
}

impl Fallback {
    /// The fallback of a target whose `credentials` key holds `name`.
    pub fn of(name: Option<&str>, credentials: &BTreeMap<String, CredentialSpec>) -> Self {
        match name.map(|n| credentials.get(n)) {
            None => Fallback::DefaultChain,
            Some(Some(CredentialSpec::SdkEnv)) => Fallback::SdkEnv,
            Some(_) => Fallback::None,
        }
    }
}

/// The target's `project_id`, or the one from `env_value` (the value of
/// [`PROJECT_ID_ENV`]) where the target may leave it out; records a problem
/// when there is none.
pub fn project_id(
    t: &TableReader,
    fallback: Fallback,
    env_value: Option<String>,
) -> Option<String> {
    let from_env = env_value.filter(|v| !v.is_empty());
    let why = match fallback {
        Fallback::None => return t.required_string("project_id"),
        Fallback::SdkEnv => "credentials of type sdk_env",
        Fallback::DefaultChain => "the default credential chain",
    };
    if let Some(id) = t.string("project_id") {
        return Some(id);
    }
    if from_env.is_none() {
        t.missing(
            "project_id",
            &format!("missing: set project_id, or {PROJECT_ID_ENV} since this target uses {why}"),
        );
    }
    from_env
}

#[cfg(test)]
mod tests {
    fn with_env(text: &str, env: Option<&str>) -> Result<Vec<String>, String> {
        // The variable is read by `load_str`; tests pass it explicitly instead.
        super::super::load_str_with_env(text, "c.toml", env.map(String::from))
            .map(|c| c.targets.into_iter().map(|t| t.project_id).collect())
            .map_err(|e| e.to_string())
    }

    const SDK_ENV: &str = "[credentials.sdk]\ntype = \"sdk_env\"\n\n[[targets]]\nregion = \"cn-north-4\"\ncredentials = \"sdk\"\n";
    const CHAIN: &str = "[[targets]]\nregion = \"cn-north-4\"\n";
    const TOKEN: &str = "[credentials.t]\ntype = \"token\"\ntoken_file = \"/x\"\n\n[[targets]]\nregion = \"cn-north-4\"\ncredentials = \"t\"\n";

    #[test]
    fn sdk_env_and_chain_targets_take_the_project_from_the_environment() {
        assert_eq!(
            with_env(SDK_ENV, Some("p-env")),
            Ok(vec!["p-env".to_string()])
        );
        assert_eq!(
            with_env(CHAIN, Some("p-env")),
            Ok(vec!["p-env".to_string()])
        );
        let explicit = format!("{CHAIN}project_id = \"p-file\"\n");
        assert_eq!(
            with_env(&explicit, Some("p-env")),
            Ok(vec!["p-file".to_string()])
        );
    }

    #[test]
    fn missing_project_messages_say_what_would_do() {
        assert_eq!(
            with_env(SDK_ENV, None),
            Err("c.toml:4: targets[0].project_id: missing: set project_id, or HUAWEICLOUD_SDK_PROJECT_ID since this target uses credentials of type sdk_env".into())
        );
        assert_eq!(
            with_env(CHAIN, Some("")),
            Err("c.toml:1: targets[0].project_id: missing: set project_id, or HUAWEICLOUD_SDK_PROJECT_ID since this target uses the default credential chain".into())
        );
        assert_eq!(
            with_env(TOKEN, Some("p-env")),
            Err("c.toml:5: targets[0].project_id: missing (required)".into())
        );
    }

    #[test]
    fn bad_project_from_the_environment_is_reported() {
        let err = with_env(CHAIN, Some("no/slashes")).unwrap_err();
        assert!(
            err.contains("targets[0].project_id: must be 1 to 64 letters"),
            "{err}"
        );
    }
}
