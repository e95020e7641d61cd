//! The Slurm executor: `metarl run EXPERIMENT --executor slurm` submits a study's units as
//! job arrays instead of running them here.
//!
//! Every array task runs one unit through the same entry point the local pool uses,
//! `metarl worker EXPERIMENT --out DIR --unit ID`, so a unit's files are the same bytes
//! whichever executor ran it. A submission is:
//!
//! - one array of the units that need nothing unfinished: pretraining, the scratch baseline,
//!   and adaptations whose pretraining is already done;
//! - per pretraining unit, an array of its adaptations, `--dependency=afterok:<its task>`, so
//!   a failed pretraining holds back only its own adaptations;
//! - a report job (`metarl worker --report`) after all of them.
//!
//! Everything is written into `<run>/slurm/` before anything is submitted, so users can read
//! it (`--dry-run` stops there): `unit.sbatch` (one unit per array task), `report.sbatch`,
//! the units files the arrays index, and `submit-<n>.sh`, the submission itself, which
//! records each job it submits in `jobs.tsv`. `--resume` looks those jobs up in `squeue`: a
//! unit still queued or running is left alone (its dependants wait for its job), and only
//! units that are neither done nor queued are submitted again.
//!
//! The run directory must be on a filesystem the nodes share. The submitting process takes
//! the run directory's lock only while it submits; on the nodes, two workers never run one
//! unit at once (see [`crate::lock::UnitLock`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::executor::Launch;
use crate::experiment::Plan;
use crate::run::UnitRef;

/// The largest array one `sbatch` gets (Slurm's default `MaxArraySize` is 1001).
const MAX_ARRAY: usize = 1000;

/// Seconds before its time limit that a job gets SIGUSR1 (`--signal=B:USR1@...`), time for
/// the unit to save a checkpoint.
const STOP_WARNING_S: u32 = 180;

/// `[slurm]` of an experiment, or `--slurm KEY=VALUE` on the command line: the resources
/// every job asks for. Not part of the experiment's identity (`config.toml`): a resumed run
/// may ask for another partition or time limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmOptions {
    /// `--partition`.
    #[serde(default)]
    pub partition: Option<String>,
    /// `--time`, e.g. `"2-00:00:00"` or `"04:00:00"`.
    #[serde(default)]
    pub time: Option<String>,
    /// `--cpus-per-task` (default: the experiment's `threads`).
    #[serde(default)]
    pub cpus_per_task: Option<u32>,
    /// `--mem`, e.g. `"16G"`.
    #[serde(default)]
    pub mem: Option<String>,
    /// `--gres`, e.g. `"gpu:1"`.
    #[serde(default)]
    pub gres: Option<String>,
    /// `--account`.
    #[serde(default)]
    pub account: Option<String>,
    /// More `#SBATCH` lines, each an option as sbatch takes it (`"--qos=high"`).
    #[serde(default)]
    pub extra: Vec<String>,
    /// Shell lines every job runs before the worker (`"module load cuda"`).
    #[serde(default)]
    pub setup: Vec<String>,
}

impl SlurmOptions {
    /// Applies `--slurm KEY=VALUE` overrides: a list key (`extra`, `setup`) gets the value
    /// appended, any other key is replaced. A value is read as TOML where it parses as such
    /// (`cpus_per_task=4`), as a string otherwise (`partition=gpu`).
    pub fn with_overrides(&self, overrides: &[String]) -> anyhow::Result<SlurmOptions> {
        let mut table = match toml::Value::try_from(self)? {
            toml::Value::Table(t) => t,
            _ => unreachable!("a struct serialises to a table"),
        };
        for o in overrides {
            let Some((key, value)) = o.split_once('=') else {
                bail!("--slurm '{o}': give KEY=VALUE, e.g. --slurm partition=gpu");
            };
            let key = key.trim();
            let value = value.trim();
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.to_string()));
            match key {
                "extra" | "setup" => {
                    let list = table.entry(key).or_insert_with(|| toml::Value::Array(Vec::new()));
                    if let (toml::Value::Array(list), v) = (list, parsed) {
                        match v {
                            toml::Value::Array(items) => list.extend(items),
                            toml::Value::String(_) => list.push(v),
                            _ => list.push(toml::Value::String(value.to_string())),
                        }
                    }
                }
                _ => {
                    table.insert(key.to_string(), parsed);
                }
            }
        }
        toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
            anyhow::anyhow!("--slurm: {}", e.message().trim().replace('\n', " "))
        })
    }

    /// The `#SBATCH` lines every job of the run gets (its name and output aside).
    fn sbatch_lines(&self, threads: u32) -> Vec<String> {
        let mut lines = vec![format!("--cpus-per-task={}", self.cpus_per_task.unwrap_or(threads))];
        for (flag, value) in [
            ("partition", &self.partition),
            ("time", &self.time),
            ("mem", &self.mem),
            ("gres", &self.gres),
            ("account", &self.account),
        ] {
            if let Some(v) = value {
                lines.push(format!("--{flag}={v}"));
            }
        }
        lines.extend(self.extra.iter().cloned());
        lines
    }
}

/// What `metarl run --executor slurm` was asked for, beyond the plan.
#[derive(Debug, Clone)]
pub struct Submit<'a> {
    /// The run directory.
    pub out: &'a Path,
    /// Continue an earlier submission (or local run) in `out`.
    pub resume: bool,
    /// Write the scripts only; submit nothing.
    pub dry_run: bool,
    /// Discard mid-phase checkpoints first (`--restart-unfinished`).
    pub restart_unfinished: bool,
    /// How a worker is started (registry, verbosity, experiment file).
    pub launch: &'a Launch,
    /// `[slurm]` with `--slurm` applied.
    pub options: SlurmOptions,
}

/// A job an earlier submission recorded in `jobs.tsv`: an array over a units file, or the
/// report job (`units: None`).
#[derive(Debug, Clone, PartialEq)]
struct Recorded {
    job: String,
    units: Option<PathBuf>,
}

/// Where the Slurm files of run directory `out` go.
fn slurm_dir(out: &Path) -> PathBuf {
    out.join("slurm")
}

/// Reads `slurm/jobs.tsv` (none: no submission yet).
fn recorded_jobs(out: &Path) -> anyhow::Result<Vec<Recorded>> {
    let path = slurm_dir(out).join("jobs.tsv");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut out_jobs = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            [_, job, "report"] => out_jobs.push(Recorded { job: job.to_string(), units: None }),
            [_, job, units] => out_jobs.push(Recorded { job: job.to_string(), units: Some(slurm_dir(out).join(units)) }),
            _ => bail!("{}:{}: damaged (expected: submission, job id, units file)", path.display(), i + 1),
        }
    }
    Ok(out_jobs)
}

/// The number the next submission gets: one more than the last recorded.
fn next_submission(out: &Path) -> anyhow::Result<u32> {
    let path = slurm_dir(out).join("jobs.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    Ok(text.lines().filter_map(|l| l.split('\t').next()?.parse::<u32>().ok()).max().unwrap_or(0) + 1)
}

/// Where a job of this run stands in `squeue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Waiting: for resources, a dependency, or to be requeued.
    Pending,
    /// Running (or completing).
    Running,
}

/// The units of run directory `out` that its recorded Slurm jobs still hold, by unit id, with
/// the array task (`<job>_<index>`) and its state. Empty when nothing was ever submitted;
/// an error when jobs were recorded but `squeue` cannot be asked.
pub fn queued_units(out: &Path) -> anyhow::Result<HashMap<String, (String, Queued)>> {
    let recorded = recorded_jobs(out)?;
    let arrays: Vec<&Recorded> = recorded.iter().filter(|r| r.units.is_some()).collect();
    if arrays.is_empty() {
        return Ok(HashMap::new());
    }
    let output = Command::new("squeue")
        .args(["--noheader", "--array", "--me", "--format=%F|%K|%T"])
        .output()
        .map_err(|e| anyhow::anyhow!("{} was submitted to Slurm, but squeue cannot be run ({e}): run this where Slurm is", out.display()))?;
    if !output.status.success() {
        bail!("squeue failed: {}", last_line(&output.stderr));
    }
    let mut by_job: HashMap<&str, Vec<(usize, Queued)>> = HashMap::new();
    let text = String::from_utf8_lossy(&output.stdout);
    for line in text.lines() {
        let f: Vec<&str> = line.trim().split('|').collect();
        let [job, index, state] = f.as_slice() else { continue };
        let Ok(index) = index.parse::<usize>() else { continue };
        let state = match *state {
            "RUNNING" | "COMPLETING" | "CONFIGURING" | "STAGE_OUT" => Queued::Running,
            "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESIZING" | "SUSPENDED" | "PREEMPTED" => Queued::Pending,
            _ => continue,
        };
        if let Some(r) = arrays.iter().find(|r| r.job == *job) {
            by_job.entry(r.job.as_str()).or_default().push((index, state));
        }
    }
    let mut queued = HashMap::new();
    for r in arrays {
        let Some(tasks) = by_job.get(r.job.as_str()) else { continue };
        let path = r.units.as_ref().expect("arrays have units files");
        let ids = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let ids: Vec<&str> = ids.lines().collect();
        for &(index, state) in tasks {
            if let Some(id) = ids.get(index) {
                queued.insert(id.to_string(), (format!("{}_{index}", r.job), state));
            }
        }
    }
    Ok(queued)
}

/// The last non-empty line of a command's output, for one-line errors.
fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output)").trim().to_string()
}

/// Quotes `s` for a POSIX shell.
fn sh(s: impl AsRef<std::ffi::OsStr>) -> String {
    let s = s.as_ref().to_string_lossy();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c)) {
        return s.into_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// An array to submit: its units, and the job (or array task) it waits for.
#[derive(Debug, Clone, PartialEq)]
struct Array {
    units: Vec<String>,
    /// `None`: nothing. `Some(Ok(i))`: task `i` of this submission's first array. `Some(Err(job))`:
    /// an array task queued by an earlier submission.
    after: Option<Result<usize, String>>,
}

/// Groups the units to submit into arrays: those that need nothing unfinished first, then one
/// array per pretraining unit with the adaptations that wait for it.
fn arrays(graph: &[UnitRef], queued: &HashMap<String, (String, Queued)>) -> Vec<Array> {
    let todo: Vec<&UnitRef> = graph.iter().filter(|u| !u.done && !queued.contains_key(&u.id)).collect();
    let mut first = Array { units: Vec::new(), after: None };
    let mut waiting: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut waiting_on_queued: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Order of the groups: the position in the graph of the unit they wait for.
    let position = |id: &str| graph.iter().position(|u| u.id == id).unwrap_or(usize::MAX);
    for u in &todo {
        let needed = u.needs.as_deref().filter(|n| graph.iter().any(|g| g.id == *n && !g.done));
        match needed {
            None => first.units.push(u.id.clone()),
            Some(n) => match queued.get(n) {
                Some((task, _)) => waiting_on_queued.entry(task.clone()).or_default().push(u.id.clone()),
                None => waiting.entry(position(n)).or_default().push(u.id.clone()),
            },
        }
    }
    // A pretraining unit that is neither done nor queued is to do, and needs nothing: it is
    // in the first array.
    let index_in_first: HashMap<String, usize> = first.units.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect();
    let mut out = Vec::new();
    if !first.units.is_empty() {
        out.push(first);
    }
    for (pos, units) in waiting {
        out.push(Array { units, after: Some(Ok(index_in_first[&graph[pos].id])) });
    }
    for (task, units) in waiting_on_queued {
        out.push(Array { units, after: Some(Err(task)) });
    }
    out
}

/// `metarl run --executor slurm`: prepares the run directory, writes the job scripts and the
/// submission into `<out>/slurm/`, and (unless `dry_run`) submits it with `sbatch`.
pub fn submit(plan: &Plan, s: &Submit<'_>) -> anyhow::Result<()> {
    // Jobs start elsewhere: every path they are given is absolute.
    let out = &std::path::absolute(s.out).with_context(|| format!("cannot resolve {}", s.out.display()))?;
    let lock = crate::run::prepare(plan, out, s.resume)?;
    let queued = if s.resume { queued_units(out)? } else { HashMap::new() };
    if s.restart_unfinished {
        if !queued.is_empty() {
            bail!("--restart-unfinished: {} unit(s) of {} are still queued or running in Slurm; wait for them or scancel them first", queued.len(), out.display());
        }
        crate::run::discard_partial_checkpoints(out)?;
    }
    let graph = crate::run::unit_graph(plan, out);
    let arrays = arrays(&graph, &queued);
    let done = graph.iter().filter(|u| u.done).count();
    if arrays.is_empty() && queued.is_empty() {
        // Nothing left for Slurm: write the report here, as a local run would.
        drop(lock);
        log::info!("{}: all {} units are done; writing the report", out.display(), graph.len());
        return crate::run::report_when_done(plan, out);
    }
    if arrays.is_empty() {
        drop(lock);
        println!(
            "{}: nothing to submit: {done} of {} units are done and the other {} are still queued or running in Slurm (metarl status {})",
            plan.name,
            graph.len(),
            queued.len(),
            out.display()
        );
        return Ok(());
    }
    let dir = slurm_dir(out);
    for d in [dir.clone(), out.join("logs")] {
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let n = next_submission(out)?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let exe = std::env::current_exe().context("cannot locate the metarl executable")?;
    let worker = |args: &str| -> String {
        let mut cmd = format!("{} --registry {}", sh(&exe), sh(&s.launch.registry));
        for _ in 0..s.launch.verbose {
            cmd.push_str(" -v");
        }
        write!(cmd, " worker {} --out {} --checkpoint-every {} {args}", sh(&s.launch.experiment), sh(out), s.launch.checkpoint_every).unwrap();
        cmd
    };
    let header = |what: &str, output: &str| -> String {
        let mut t = format!("#!/usr/bin/env bash\n# {what}\n# Written by `metarl run --executor slurm`; `metarl run --resume` rewrites it.\n");
        writeln!(t, "#SBATCH --job-name={}", sh(format!("metarl-{}", plan.name))).unwrap();
        writeln!(t, "#SBATCH --output={}", sh(out.join("logs").join(output))).unwrap();
        writeln!(t, "#SBATCH --open-mode=append").unwrap();
        // Before its time limit, SIGUSR1 to this script (which stops the worker) and time to
        // save a checkpoint; the job may be requeued to continue from it.
        writeln!(t, "#SBATCH --signal=B:USR1@{STOP_WARNING_S}").unwrap();
        writeln!(t, "#SBATCH --requeue").unwrap();
        for line in s.options.sbatch_lines(plan.threads) {
            writeln!(t, "#SBATCH {line}").unwrap();
        }
        t.push_str("set -euo pipefail\n");
        for line in &s.options.setup {
            writeln!(t, "{line}").unwrap();
        }
        writeln!(t, "cd {}", sh(&cwd)).unwrap();
        t
    };
    let mut unit_script = header(
        &format!("One unit of the metarl run {} per array task: line SLURM_ARRAY_TASK_ID + 1 of the units file $1.", out.display()),
        "slurm-%A_%a.out",
    );
    unit_script.push_str(concat!(
        "unit=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" \"$1\")\n",
        "if [ -z \"$unit\" ]; then echo \"error: $1 has no line $((SLURM_ARRAY_TASK_ID + 1))\" >&2; exit 2; fi\n",
    ));
    writeln!(unit_script, "{} >>{}/\"$unit.log\" 2>&1 &", worker("--unit \"$unit\""), sh(out.join("logs"))).unwrap();
    unit_script.push_str(concat!(
        "worker=$!\n",
        "# The worker stops at its next progress report, after a mid-phase checkpoint, and exits 75\n",
        "# when asked with SIGTERM. SIGUSR1 is Slurm's warning before the time limit: stop, then\n",
        "# requeue this array task, which continues from the checkpoint. SIGTERM (scancel, or a\n",
        "# preemption, which Slurm requeues itself where the cluster says so): stop, no requeue.\n",
        "requeue=0\n",
        "trap 'requeue=1; kill -TERM \"$worker\" 2>/dev/null || true' USR1\n",
        "trap 'kill -TERM \"$worker\" 2>/dev/null || true' TERM INT\n",
        "status=0\n",
        "while kill -0 \"$worker\" 2>/dev/null; do wait \"$worker\" || true; done\n",
        "wait \"$worker\" || status=$?\n",
        "if [ \"$status\" = 75 ] && [ \"$requeue\" = 1 ]; then\n",
        "    echo \"unit $unit stopped before the time limit; requeueing job $SLURM_JOB_ID\" >&2\n",
        "    scontrol requeue \"$SLURM_JOB_ID\" && exit 0\n",
        "fi\n",
        "exit \"$status\"\n",
    ));
    let mut report_script = header(&format!("The report of the metarl run {}, once every unit is done.", out.display()), "slurm-report-%j.out");
    writeln!(report_script, "exec {} >>{} 2>&1", worker("--report"), sh(out.join("logs").join("report.log"))).unwrap();
    write_file(&dir.join("unit.sbatch"), &unit_script)?;
    write_file(&dir.join("report.sbatch"), &report_script)?;

    let mut script = format!(
        "#!/usr/bin/env bash\n# Submission {n} of the metarl run {}: {} unit(s) in {} array job(s), then the report.\n\
         # Written by `metarl run --executor slurm`, which runs it (after --dry-run, you may).\n\
         # Each job is recorded in jobs.tsv, where `metarl status` and `--resume` look for it.\n\
         set -euo pipefail\ncd {}\n",
        out.display(),
        arrays.iter().map(|a| a.units.len()).sum::<usize>(),
        arrays.len(),
        sh(&dir)
    );
    let mut report_after: Vec<String> = queued.values().map(|(task, _)| task.clone()).collect();
    report_after.sort();
    let mut chunk_names: Vec<Vec<String>> = Vec::new();
    let mut k = 0;
    for (a, array) in arrays.iter().enumerate() {
        let mut names = Vec::new();
        for (c, chunk) in array.units.chunks(MAX_ARRAY).enumerate() {
            let units_file = format!("s{n}-{a}-{c}.units");
            write_file(&dir.join(&units_file), &(chunk.join("\n") + "\n"))?;
            let dependency = match &array.after {
                None => String::new(),
                Some(Ok(i)) => {
                    let (first_chunk, index) = (i / MAX_ARRAY, i % MAX_ARRAY);
                    format!(" --dependency=afterok:\"${{{}}}_{index}\" --kill-on-invalid-dep=yes", chunk_names[0][first_chunk])
                }
                Some(Err(task)) => format!(" --dependency=afterok:{task} --kill-on-invalid-dep=yes"),
            };
            let var = format!("j{k}");
            k += 1;
            // The units file by its full path: the job runs in the directory `metarl run` ran in.
            // `--parsable` prints `<job id>[;<cluster>]`.
            writeln!(script, "{var}=$(sbatch --parsable --array=0-{}{dependency} unit.sbatch {})", chunk.len() - 1, sh(dir.join(&units_file))).unwrap();
            writeln!(script, "{var}=${{{var}%%;*}}").unwrap();
            writeln!(script, "printf '{n}\\t%s\\t{units_file}\\n' \"${var}\" >> jobs.tsv").unwrap();
            report_after.push(format!("${{{var}}}"));
            names.push(var);
        }
        chunk_names.push(names);
    }
    writeln!(script, "report=$(sbatch --parsable --dependency=afterok:{} --kill-on-invalid-dep=yes report.sbatch)", report_after.join(":")).unwrap();
    writeln!(script, "report=${{report%%;*}}").unwrap();
    writeln!(script, "printf '{n}\\t%s\\treport\\n' \"$report\" >> jobs.tsv").unwrap();
    let arrays_list: Vec<String> = (0..k).map(|i| format!("${{j{i}}}")).collect();
    writeln!(script, "echo \"array jobs {}, report job $report\"", arrays_list.join(" ")).unwrap();
    let submit_path = dir.join(format!("submit-{n}.sh"));
    write_file(&submit_path, &script)?;

    let todo = arrays.iter().map(|a| a.units.len()).sum::<usize>();
    let summary = format!(
        "{} of {} units to submit in {} array job(s) ({done} done, {} still queued)",
        todo,
        graph.len(),
        arrays.len(),
        queued.len()
    );
    if s.dry_run {
        println!("{}: {summary}; nothing submitted (--dry-run).", plan.name);
        println!(
            "read {} and {}; submit with `bash {}`, or run this command again with --resume in place of --dry-run",
            dir.join("unit.sbatch").display(),
            submit_path.display(),
            submit_path.display()
        );
        return Ok(());
    }
    let output = Command::new("bash")
        .arg(&submit_path)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run bash for {}: {e}", submit_path.display()))?;
    if !output.status.success() {
        bail!(
            "submitting {} failed: {} (jobs submitted before the failure are in {}; `metarl run --executor slurm --resume` submits the rest)",
            submit_path.display(),
            last_line(&output.stderr),
            dir.join("jobs.tsv").display()
        );
    }
    println!("{}: {summary}; submitted as Slurm {}.", plan.name, last_line(&output.stdout));
    println!("follow it with: metarl status {}", out.display());
    Ok(())
}

/// Writes a text file whole, replacing what was there.
fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, needs: Option<&str>, done: bool) -> UnitRef {
        UnitRef { id: id.into(), name: id.into(), needs: needs.map(Into::into), done }
    }

    #[test]
    fn adaptations_wait_for_their_own_pretraining_only() {
        let graph = vec![
            unit("p1", None, false),
            unit("p2", None, true),
            unit("p3", None, false),
            unit("a1", Some("p1"), false),
            unit("a2", Some("p2"), false),
            unit("a3", Some("p3"), false),
            unit("a3b", Some("p3"), false),
            unit("s", None, false),
        ];
        let got = arrays(&graph, &HashMap::new());
        assert_eq!(
            got,
            vec![
                Array { units: vec!["p1".into(), "p3".into(), "a2".into(), "s".into()], after: None },
                Array { units: vec!["a1".into()], after: Some(Ok(0)) },
                Array { units: vec!["a3".into(), "a3b".into()], after: Some(Ok(1)) },
            ]
        );
        // p3 still queued from an earlier submission: its adaptations wait for that task.
        let queued = HashMap::from([("p3".to_string(), ("12_4".to_string(), Queued::Running))]);
        let got = arrays(&graph, &queued);
        assert_eq!(got[0].units, vec!["p1", "a2", "s"]);
        assert_eq!(got[2], Array { units: vec!["a3".into(), "a3b".into()], after: Some(Err("12_4".into())) });
    }

    #[test]
    fn overrides_replace_scalars_append_to_lists_and_name_bad_keys() {
        let base = SlurmOptions { partition: Some("cpu".into()), extra: vec!["--qos=low".into()], ..Default::default() };
        let got = base
            .with_overrides(&["partition=gpu".into(), "cpus_per_task=4".into(), "extra=--exclusive".into(), "time=04:00:00".into()])
            .unwrap();
        assert_eq!(got.partition.as_deref(), Some("gpu"));
        assert_eq!(got.cpus_per_task, Some(4));
        assert_eq!(got.time.as_deref(), Some("04:00:00"));
        assert_eq!(got.extra, vec!["--qos=low", "--exclusive"]);
        let e = base.with_overrides(&["partitoin=gpu".into()]).unwrap_err().to_string();
        assert!(e.contains("partitoin") && !e.contains('\n'), "{e}");
        let e = base.with_overrides(&["gpu".into()]).unwrap_err().to_string();
        assert!(e.contains("KEY=VALUE"), "{e}");
    }

    #[test]
    fn shell_quoting_survives_spaces_and_quotes() {
        assert_eq!(sh("/a/b-c_d.toml"), "/a/b-c_d.toml");
        assert_eq!(sh("runs/my study"), "'runs/my study'");
        assert_eq!(sh("it's"), r"'it'\''s'");
    }
}
