//! Secrets — the WhatsApp access token, app secret and verify token, the API keys — from the
//! environment locally and from SSM Parameter Store on AWS.
//!
//! For a secret `NAME` a function's environment holds either
//!
//! - `NAME` itself: the value (the local stack, tests), or
//! - `NAME_PARAMETER`: the name (or ARN) of an SSM parameter, normally a `SecureString`, read
//!   with decryption once per cold start. A Secrets Manager secret is read the same way
//!   through its Parameter Store reference, `/aws/reference/secretsmanager/<secret-id>`.
//!
//! Setting both is a mistake and reported as one. The resolved values are put into the process
//! environment ([`load_into_env`]) before the function reads its typed configuration, so the
//! configuration code stays the same everywhere and still names every missing variable.

use std::collections::HashMap;

/// Appended to a secret's name to get the variable that names its SSM parameter.
pub const PARAMETER_SUFFIX: &str = "_PARAMETER";

/// The WhatsApp Cloud API access token (upload, sender).
pub const WA_ACCESS_TOKEN: &str = "WA_ACCESS_TOKEN";
/// The Meta app secret that signs webhook payloads (api).
pub const WA_APP_SECRET: &str = "WA_APP_SECRET";
/// The token Meta echoes when it verifies the webhook URL (api).
pub const WA_VERIFY_TOKEN: &str = "WA_VERIFY_TOKEN";
/// The keys that authorise calls to the HTTP API (api).
pub const ANNA_API_KEYS: &str = "ANNA_API_KEYS";

/// Every secret any function reads; none of them may appear as a plain value in the template.
pub const ALL: [&str; 4] = [
    WA_ACCESS_TOKEN,
    WA_APP_SECRET,
    WA_VERIFY_TOKEN,
    ANNA_API_KEYS,
];

/// GetParameters takes at most ten names per call.
const GET_PARAMETERS_MAX: usize = 10;

/// Where one secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `NAME` is set: the value is already in the environment.
    Value,
    /// `NAME_PARAMETER` is set: the value is in this SSM parameter.
    Parameter(String),
    /// Neither is set; the function's configuration reports `NAME` as missing.
    Missing,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("set either {name} or {name}{PARAMETER_SUFFIX}, not both")]
    Ambiguous { name: String },
    #[error("{variable}: SSM parameter {parameter:?} does not exist or is not readable")]
    NotFound { variable: String, parameter: String },
    #[error("{variable}: SSM parameter {parameter:?} is empty")]
    Empty { variable: String, parameter: String },
    #[error("reading SSM parameters {parameters:?}: {message}")]
    Ssm {
        parameters: Vec<String>,
        message: String,
    },
    #[error("starting a runtime to read SSM parameters: {0}")]
    Runtime(String),
}

fn non_empty<'a>(vars: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Where the secret `name` comes from, given the environment `vars`.
pub fn source(vars: &HashMap<String, String>, name: &str) -> Result<Source, SecretError> {
    let value = non_empty(vars, name);
    let parameter = non_empty(vars, &format!("{name}{PARAMETER_SUFFIX}"));
    match (value, parameter) {
        (Some(_), Some(_)) => Err(SecretError::Ambiguous {
            name: name.to_owned(),
        }),
        (Some(_), None) => Ok(Source::Value),
        (None, Some(parameter)) => Ok(Source::Parameter(parameter.to_owned())),
        (None, None) => Ok(Source::Missing),
    }
}

/// Reads, with decryption, every secret in `names` whose `NAME_PARAMETER` is set in `vars`,
/// and returns `(NAME, value)` pairs. Secrets given directly or not at all are left out.
/// Each missing, unreadable or empty parameter is an error naming the variable.
pub async fn resolve(
    ssm: &aws_sdk_ssm::Client,
    vars: &HashMap<String, String>,
    names: &[&str],
) -> Result<Vec<(String, String)>, SecretError> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for name in names {
        if let Source::Parameter(parameter) = source(vars, name)? {
            wanted.push(((*name).to_owned(), parameter));
        }
    }
    let mut values: HashMap<String, String> = HashMap::new();
    for chunk in wanted.chunks(GET_PARAMETERS_MAX) {
        let mut parameters: Vec<String> = chunk.iter().map(|(_, p)| p.clone()).collect();
        parameters.sort();
        parameters.dedup();
        let output = ssm
            .get_parameters()
            .set_names(Some(parameters.clone()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| SecretError::Ssm {
                parameters,
                message: aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
            })?;
        for parameter in output.parameters.unwrap_or_default() {
            if let (Some(name), Some(value)) = (parameter.name, parameter.value) {
                // Parameters may be requested by ARN; GetParameters answers with the ARN too.
                if let Some(arn) = parameter.arn {
                    values.insert(arn, value.clone());
                }
                values.insert(name, value);
            }
        }
    }
    wanted
        .into_iter()
        .map(|(variable, parameter)| match values.get(&parameter) {
            None => Err(SecretError::NotFound {
                variable,
                parameter,
            }),
            Some(value) if value.trim().is_empty() => Err(SecretError::Empty {
                variable,
                parameter,
            }),
            Some(value) => Ok((variable, value.clone())),
        })
        .collect()
}

/// Resolves `names` as [`resolve`] does and sets each value as the environment variable of its
/// name; returns how many were read from SSM. Does nothing (and needs no AWS) when no
/// `NAME_PARAMETER` is set.
///
/// Call it first thing in a synchronous `main`, before any runtime or other thread exists: it
/// runs the SSM call on a current-thread runtime of its own, shuts that runtime down (which
/// joins its threads), and only then changes the environment.
pub fn load_into_env(names: &[&str]) -> Result<usize, SecretError> {
    let vars: HashMap<String, String> = std::env::vars().collect();
    let mut any_parameter = false;
    for name in names {
        any_parameter |= matches!(source(&vars, name)?, Source::Parameter(_));
    }
    if !any_parameter {
        return Ok(0);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SecretError::Runtime(e.to_string()))?;
    let resolved = runtime.block_on(async {
        let sdk = crate::aws::sdk_config().await;
        resolve(&aws_sdk_ssm::Client::new(&sdk), &vars, names).await
    })?;
    // Dropping the runtime shuts down its blocking pool and joins its threads.
    drop(runtime);
    for (name, value) in &resolved {
        // SAFETY: the caller runs this at the start of `main`, before starting any thread, and
        // the only threads this function started were joined above; nothing can read or write
        // the environment concurrently.
        unsafe { std::env::set_var(name, value) };
    }
    Ok(resolved.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_value_in_the_environment_is_used_as_is() {
        let env = vars(&[("WA_ACCESS_TOKEN", "local-token")]);
        assert_eq!(source(&env, WA_ACCESS_TOKEN).unwrap(), Source::Value);
    }

    #[test]
    fn a_parameter_name_points_at_ssm() {
        let env = vars(&[("WA_ACCESS_TOKEN_PARAMETER", " /anna/wa-access-token ")]);
        assert_eq!(
            source(&env, WA_ACCESS_TOKEN).unwrap(),
            Source::Parameter("/anna/wa-access-token".into())
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let env = vars(&[("WA_ACCESS_TOKEN", " "), ("WA_ACCESS_TOKEN_PARAMETER", "")]);
        assert_eq!(source(&env, WA_ACCESS_TOKEN).unwrap(), Source::Missing);
    }

    #[test]
    fn both_at_once_is_a_mistake() {
        let env = vars(&[
            ("ANNA_API_KEYS", "k1"),
            ("ANNA_API_KEYS_PARAMETER", "/anna/api-keys"),
        ]);
        let err = source(&env, ANNA_API_KEYS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "set either ANNA_API_KEYS or ANNA_API_KEYS_PARAMETER, not both"
        );
    }

    #[test]
    fn nothing_to_fetch_needs_no_aws() {
        // No *_PARAMETER among these names in the test environment: returns without a call.
        assert_eq!(load_into_env(&["ANNA_SECRETS_TEST_UNSET"]).unwrap(), 0);
    }
}
