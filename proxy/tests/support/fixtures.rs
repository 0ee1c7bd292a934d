//! Route fixture sets: a static `traefik.yml` plus the dynamic files beside it, laid out as a
//! Bloud box deploys them. Two sets exist: the project's own (`proxy/tests/fixtures/traefik`,
//! always present) and upstream Bloud's real files (found by `support::upstream_fixtures`).

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context};

use super::proxy::{output_text, run_check, ProxyBuilder};

#[derive(Clone)]
pub struct RouteFixtures {
    dir: PathBuf,
    /// How many dynamic files the set must have, so a half-present copy fails loudly.
    min_files: usize,
}

impl RouteFixtures {
    /// The project's own files.
    pub fn own() -> RouteFixtures {
        RouteFixtures {
            dir: super::own_fixtures().join("traefik"),
            min_files: 4,
        }
    }

    /// Upstream Bloud's files; `None` (after saying so) when they are not available.
    pub fn upstream() -> Option<RouteFixtures> {
        Some(RouteFixtures {
            dir: super::upstream_fixtures()?.join("traefik"),
            min_files: 8,
        })
    }

    /// Every dynamic file (all but the static traefik.yml), in name order.
    pub fn dynamic_files(&self) -> anyhow::Result<Vec<PathBuf>> {
        let dir = &self.dir;
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry
                .with_context(|| format!("listing {}", dir.display()))?
                .path();
            let is_yaml = path.extension().is_some_and(|e| e == "yml" || e == "yaml");
            if is_yaml && path.file_name().is_some_and(|n| n != "traefik.yml") {
                files.push(path);
            }
        }
        files.sort();
        ensure!(
            files.len() >= self.min_files,
            "expected at least {} dynamic files in {}, found {files:?}",
            self.min_files,
            dir.display()
        );
        Ok(files)
    }

    /// The static traefik.yml with the web address and the routes directory pointed at the
    /// test's.
    pub fn static_doc(
        &self,
        web_port: u16,
        routes_dir: &Path,
    ) -> anyhow::Result<serde_json::Value> {
        let path = self.dir.join("traefik.yml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut doc: serde_json::Value =
            serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        doc["entryPoints"]["web"]["address"] = format!("127.0.0.1:{web_port}").into();
        doc["providers"]["file"]["directory"] = routes_dir.display().to_string().into();
        Ok(doc)
    }

    /// The dynamic files as (name, text), with every `from` of `rewrite` replaced by its `to`
    /// (service URLs pointed at test upstreams).
    pub fn dynamic_texts(
        &self,
        rewrite: &[(String, String)],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for src in self.dynamic_files()? {
            let mut text = std::fs::read_to_string(&src)
                .with_context(|| format!("reading {}", src.display()))?;
            for (from, to) in rewrite {
                text = text.replace(from.as_str(), to.as_str());
            }
            let name = src
                .file_name()
                .and_then(|n| n.to_str())
                .context("fixture file name")?;
            out.push((name.to_string(), text));
        }
        Ok(out)
    }

    /// Runs `bloud-proxy check` on a copy of the set, after `edit` changed the copy (its
    /// argument is the copy's directory: `traefik.yml` and `dynamic/`). Returns the exit code
    /// and everything the run printed.
    pub async fn check_copy(
        &self,
        edit: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<(Option<i32>, String)> {
        let dir = tempfile::tempdir().context("creating a temp dir")?;
        let static_path = self.copy_to(dir.path())?;
        edit(dir.path())?;
        let out = run_check(&static_path).await?;
        Ok((out.status.code(), output_text(&out)))
    }

    /// Copies the set into `dir` (`traefik.yml` + `dynamic/`); returns the static file's path.
    fn copy_to(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let dynamic = dir.join("dynamic");
        std::fs::create_dir_all(&dynamic)
            .with_context(|| format!("creating {}", dynamic.display()))?;
        for (name, text) in self.dynamic_texts(&[])? {
            let dst = dynamic.join(name);
            std::fs::write(&dst, text).with_context(|| format!("writing {}", dst.display()))?;
        }
        let static_path = dir.join("traefik.yml");
        std::fs::write(
            &static_path,
            serde_saphyr::to_string(&self.static_doc(8080, &dynamic)?)?,
        )
        .with_context(|| format!("writing {}", static_path.display()))?;
        Ok(static_path)
    }

    /// A proxy running this set's static file and dynamic files, URLs rewritten.
    pub fn proxy(&self, rewrite: &[(String, String)]) -> anyhow::Result<ProxyBuilder> {
        // Read once here so that a broken static file is reported as such; the closure below
        // cannot return an error.
        self.static_doc(0, Path::new("."))?;
        let set = self.clone();
        let mut builder = ProxyBuilder::default().static_config(move |ports, _dir, routes| {
            set.static_doc(ports.web, routes)
                .unwrap_or(serde_json::Value::Null)
        });
        for (name, text) in self.dynamic_texts(rewrite)? {
            builder = builder.route_file(&name, text);
        }
        Ok(builder)
    }
}
