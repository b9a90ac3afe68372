//! `--change` instructions of `import` and `commit`: the Dockerfile instructions that only set
//! config (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `ONBUILD`, `USER`, `VOLUME`,
//! `WORKDIR`), applied to a container config as `docker import -c` and `docker commit -c` do.

use super::config::ContainerConfig;
use crate::error::{Error, Result};

/// Apply one instruction to `config`.
pub fn apply(config: &mut ContainerConfig, instruction: &str) -> Result<()> {
    let bad = |reason: &str| Error::BadImage { what: format!("--change {instruction:?}"), reason: reason.to_owned() };
    let trimmed = instruction.trim();
    let (word, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(bad("the instruction needs an argument"));
    }
    match word.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = Some(command(rest)),
        "ENTRYPOINT" => config.entrypoint = Some(command(rest)),
        "USER" => config.user = rest.to_owned(),
        "WORKDIR" => config.working_dir = rest.to_owned(),
        "ENV" => {
            for (k, v) in pairs(rest).map_err(&bad)? {
                let env = config.env.get_or_insert_with(Vec::new);
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            for (k, v) in pairs(rest).map_err(&bad)? {
                config.labels.get_or_insert_with(Default::default).insert(k, v);
            }
        }
        "EXPOSE" => {
            for port in rest.split_whitespace() {
                let port = if port.contains('/') { port.to_owned() } else { format!("{port}/tcp") };
                config.exposed_ports.get_or_insert_with(Default::default).insert(port, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let paths = json_list(rest).unwrap_or_else(|| rest.split_whitespace().map(str::to_owned).collect());
            for path in paths {
                config.volumes.get_or_insert_with(Default::default).insert(path, serde_json::json!({}));
            }
        }
        "ONBUILD" => config.on_build.get_or_insert_with(Vec::new).push(rest.to_owned()),
        _ => {
            return Err(bad(
                "only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME and WORKDIR can be changed",
            ));
        }
    }
    Ok(())
}

/// The exec form (`["a","b"]`) as is; the shell form wrapped in `/bin/sh -c`.
fn command(rest: &str) -> Vec<String> {
    json_list(rest).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.to_owned()])
}

fn json_list(s: &str) -> Option<Vec<String>> {
    if s.starts_with('[') { serde_json::from_str(s).ok() } else { None }
}

/// `K=V K2="v 2"` pairs, or the legacy `K V` form.
fn pairs(rest: &str) -> std::result::Result<Vec<(String, String)>, &'static str> {
    if !rest.split_whitespace().next().unwrap_or_default().contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).ok_or("expected KEY=VALUE or KEY VALUE")?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err("expected KEY=VALUE");
        }
        let mut value = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            chars.next();
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, '\\') => value.extend(chars.next()),
                (_, c) => value.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote");
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions() {
        let mut c = ContainerConfig::default();
        apply(&mut c, r#"CMD ["/bin/sh"]"#).unwrap();
        apply(&mut c, "ENTRYPOINT echo hi").unwrap();
        apply(&mut c, r#"ENV A=1 B="two words""#).unwrap();
        apply(&mut c, "ENV A 3").unwrap();
        apply(&mut c, "LABEL x=y").unwrap();
        apply(&mut c, "EXPOSE 80 53/udp").unwrap();
        apply(&mut c, "WORKDIR /srv").unwrap();
        apply(&mut c, "user nobody").unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.env.unwrap(), ["B=two words", "A=3"]);
        assert_eq!(c.labels.unwrap()["x"], "y");
        assert_eq!(c.exposed_ports.unwrap().keys().collect::<Vec<_>>(), ["53/udp", "80/tcp"]);
        assert_eq!((c.working_dir.as_str(), c.user.as_str()), ("/srv", "nobody"));
        assert!(apply(&mut ContainerConfig::default(), "RUN rm -rf /").is_err());
        assert!(apply(&mut ContainerConfig::default(), "CMD").is_err());
        assert!(apply(&mut ContainerConfig::default(), r#"ENV A="x"#).is_err());
    }
}
