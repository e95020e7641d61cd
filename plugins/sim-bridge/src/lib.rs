//! The simulator bridge: metarl's env plugins for Python-only simulators (Meta-World, RLBench)
//! run the simulator in a server subprocess and talk to it over its stdin and stdout.
//!
//! **Why a process.** It keeps libpython, the simulator and its GUI toolkit out of the process
//! that holds libtorch; a simulator that crashes or hangs becomes a one-line error (with its
//! last stderr lines) instead of a dead host; and cargo needs no Python to build.
//!
//! **Protocol.** A frame is one line of JSON (the header) followed by raw little-endian arrays:
//! the header's `arrays` lists them in order as `{name, dtype, shape}` (`u8`, `f32`, `i32`,
//! `f64`), and their bytes follow, one after the other. A request's header carries `op` (the
//! operation: `spaces`, `reset`, `step`, `demos`, `close`, ...) and its fields; a reply's
//! carries `ok` and the operation's fields, or `ok: false` and `error`. The Python side is
//! `python/metarl_bridge.py` ([`PYTHON_BRIDGE`]), which a server's source is appended to and
//! run with `python -u -c`, so nothing has to be installed next to the plugin library.
//!
//! **Failure.** Every reply is awaited with a timeout. A server that exits, is killed, or does
//! not answer in time is killed (if still alive) and reported with the operation, the exit
//! code or signal and its last stderr lines; the [`Server`] is then dead, and its owner decides
//! whether to start a new one.

pub mod parts;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

/// The Python side of the protocol, to which a server's own source is appended.
pub const PYTHON_BRIDGE: &str = include_str!("../python/metarl_bridge.py");

/// Stderr lines of a server kept for error messages.
const STDERR_LINES: usize = 12;

/// An array of a frame: its name, dtype, shape and little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    /// Name, as the header lists it.
    pub name: String,
    /// `u8`, `f32`, `i32` or `f64`.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// The elements' little-endian bytes.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// An `f32` array.
    pub fn f32(name: &str, shape: &[usize], values: &[f32]) -> Blob {
        Blob { name: name.into(), dtype: "f32".into(), shape: shape.to_vec(), bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }
    /// An `i32` array.
    pub fn i32(name: &str, shape: &[usize], values: &[i32]) -> Blob {
        Blob { name: name.into(), dtype: "i32".into(), shape: shape.to_vec(), bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }
    fn itemsize(dtype: &str) -> Option<usize> {
        match dtype {
            "u8" => Some(1),
            "f32" | "i32" => Some(4),
            "f64" => Some(8),
            _ => None,
        }
    }
    /// Elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// True without elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The elements as `f32` (converted from `f64`), if the dtype is a float.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        match self.dtype.as_str() {
            "f32" => Some(self.bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
            "f64" => Some(self.bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect()),
            _ => None,
        }
    }
    /// The elements as `i32`, if the dtype is `i32`.
    pub fn to_i32(&self) -> Option<Vec<i32>> {
        (self.dtype == "i32").then(|| self.bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

/// A reply: the header's fields and its arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Header fields (`ok` and `arrays` removed).
    pub fields: Map<String, Value>,
    /// Arrays, in order.
    pub arrays: Vec<Blob>,
}

impl Reply {
    /// The array called `name`.
    pub fn array(&self, name: &str) -> Result<&Blob, String> {
        self.arrays.iter().find(|a| a.name == name).ok_or_else(|| format!("the reply has no array '{name}'"))
    }
}

/// A frame as read: the header's fields and the arrays.
pub type Frame = (Map<String, Value>, Vec<Blob>);

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, mut header: Map<String, Value>, arrays: &[Blob]) -> std::io::Result<()> {
    let specs: Vec<Value> =
        arrays.iter().map(|a| serde_json::json!({"name": a.name, "dtype": a.dtype, "shape": a.shape})).collect();
    header.insert("arrays".into(), Value::Array(specs));
    let mut line = serde_json::to_vec(&Value::Object(header)).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    for a in arrays {
        w.write_all(&a.bytes)?;
    }
    w.flush()
}

/// Reads one frame; `None` at the end of the stream.
pub fn read_frame(r: &mut impl BufRead) -> std::io::Result<Option<Frame>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let Value::Object(mut header) = serde_json::from_str(&line).map_err(|e| bad(&format!("a frame header is not JSON: {e}")))? else {
        return Err(bad("a frame header is not a JSON object"));
    };
    let specs = match header.remove("arrays") {
        Some(Value::Array(s)) => s,
        None => Vec::new(),
        Some(_) => return Err(bad("a frame header's arrays is not a list")),
    };
    let mut arrays = Vec::with_capacity(specs.len());
    for s in specs {
        let name = s["name"].as_str().ok_or_else(|| bad("an array without a name"))?.to_string();
        let dtype = s["dtype"].as_str().unwrap_or_default().to_string();
        let size = Blob::itemsize(&dtype).ok_or_else(|| bad(&format!("array '{name}' has unknown dtype '{dtype}'")))?;
        let shape: Vec<usize> = s["shape"]
            .as_array()
            .ok_or_else(|| bad(&format!("array '{name}' has no shape")))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize).ok_or_else(|| bad("a shape is not a list of sizes")))
            .collect::<Result<_, _>>()?;
        let mut bytes = vec![0u8; shape.iter().product::<usize>() * size];
        r.read_exact(&mut bytes)?;
        arrays.push(Blob { name, dtype, shape, bytes });
    }
    Ok(Some((header, arrays)))
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Names the server in errors (`metaworld`).
    pub name: String,
    /// The Python interpreter.
    pub python: PathBuf,
    /// The server's source (appended to [`PYTHON_BRIDGE`]).
    pub source: String,
    /// Extra environment variables (`MUJOCO_GL`).
    pub env: Vec<(String, String)>,
    /// How long to wait for any reply.
    pub timeout: Duration,
}

/// A running server.
pub struct Server {
    launch: Launch,
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<std::io::Result<Option<Frame>>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    dead: bool,
}

impl Server {
    /// Starts the server.
    pub fn start(launch: Launch) -> Result<Server, String> {
        let code = format!("{PYTHON_BRIDGE}\n\n{}", launch.source);
        let mut cmd = Command::new(&launch.python);
        cmd.arg("-u").arg("-c").arg(code).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in &launch.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| format!("{}: cannot start {}: {e}", launch.name, launch.python.display()))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let lines = stderr.clone();
        let name = launch.name.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                log::debug!("{name} server: {line}");
                let mut l = lines.lock().unwrap_or_else(|e| e.into_inner());
                if l.len() == STDERR_LINES {
                    l.pop_front();
                }
                l.push_back(line);
            }
        });
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let frame = read_frame(&mut r);
                let end = !matches!(frame, Ok(Some(_)));
                if tx.send(frame).is_err() || end {
                    return;
                }
            }
        });
        Ok(Server { launch, child, stdin, replies, stderr, dead: false })
    }

    /// False once the server has died or been given up on.
    pub fn alive(&self) -> bool {
        !self.dead
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines the server wrote to stderr, joined.
    fn last_stderr(&self) -> String {
        let l = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        if l.is_empty() {
            "(nothing on stderr)".into()
        } else {
            l.iter().map(|s| s.trim()).collect::<Vec<_>>().join(" | ")
        }
    }

    /// Kills the server and says how it ended.
    fn bury(&mut self, op: &str, what: &str) -> String {
        self.dead = true;
        let _ = self.child.kill();
        let how = match self.child.wait() {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                match (s.code(), s.signal()) {
                    (Some(c), _) => format!("exit code {c}"),
                    (None, Some(sig)) => format!("signal {sig}"),
                    _ => "an unknown status".into(),
                }
            }
            Err(e) => format!("an unknown status ({e})"),
        };
        // Let the stderr reader catch the last lines.
        std::thread::sleep(Duration::from_millis(50));
        format!("{} server (pid {}) {what} during '{op}' ({how}); its last stderr lines: {}", self.launch.name, self.child.id(), self.last_stderr())
    }

    /// Sends `op` with `fields` and `arrays`, and waits for the reply. A reply with `ok: false`
    /// is the server's error message; a dead, killed or silent server is an error naming it.
    pub fn call(&mut self, op: &str, mut fields: Map<String, Value>, arrays: &[Blob]) -> Result<Reply, String> {
        if self.dead {
            return Err(format!("{} server is dead (an earlier call failed)", self.launch.name));
        }
        fields.insert("op".into(), Value::String(op.into()));
        if write_frame(&mut self.stdin, fields, arrays).is_err() {
            return Err(self.bury(op, "exited"));
        }
        match self.replies.recv_timeout(self.launch.timeout) {
            Ok(Ok(Some((mut header, arrays)))) => {
                if header.remove("ok") == Some(Value::Bool(true)) {
                    Ok(Reply { fields: header, arrays })
                } else {
                    let msg = header.get("error").and_then(|e| e.as_str()).unwrap_or("(no message)").to_string();
                    Err(format!("{} server: {op}: {msg}", self.launch.name))
                }
            }
            Ok(Ok(None)) | Err(RecvTimeoutError::Disconnected) => Err(self.bury(op, "exited")),
            Ok(Err(e)) => Err(self.bury(op, &format!("sent a broken frame ({e})"))),
            Err(RecvTimeoutError::Timeout) => {
                let t = self.launch.timeout.as_secs_f64();
                Err(self.bury(op, &format!("did not answer within {t} s and was killed")))
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.dead {
            let mut close = Map::new();
            close.insert("op".into(), Value::String("close".into()));
            let _ = write_frame(&mut self.stdin, close, &[]);
            for _ in 0..20 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python to run a server with: `configured` (a plugin's `python` key) if given, else
/// `$METARL_PYTHON`, else the project venv's (`.venv/bin/python` in the current directory or
/// above the plugin library) when it has `package` installed.
pub fn find_python(configured: Option<&str>, package: &str) -> Result<PathBuf, String> {
    if let Some(p) = configured.filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("METARL_PYTHON").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let site = metarl_plugin_kit::locate::venv_package(package, &|p: &Path| p.is_dir())
        .ok_or_else(|| format!("no Python with '{package}' found: run .ci/setup (it installs it into .venv), or set the plugin's `python` key or METARL_PYTHON"))?;
    // <dir>/.venv/lib/python3.X/site-packages/<package> -> <dir>/.venv/bin/python
    let venv = site.ancestors().nth(4).ok_or("unexpected venv layout")?;
    Ok(venv.join("bin/python"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut fields = Map::new();
        fields.insert("op".into(), Value::String("step".into()));
        let arrays = [Blob::f32("a", &[2, 2], &[1.0, -2.5, 3.0, 0.0]), Blob::i32("b", &[3], &[7, -1, 0])];
        let mut bytes = Vec::new();
        write_frame(&mut bytes, fields, &arrays).unwrap();
        let (header, back) = read_frame(&mut &bytes[..]).unwrap().unwrap();
        assert_eq!(header["op"], "step");
        assert_eq!(back, arrays);
        assert_eq!(back[0].to_f32().unwrap(), vec![1.0, -2.5, 3.0, 0.0]);
        assert_eq!(back[1].to_i32().unwrap(), vec![7, -1, 0]);
        assert!(read_frame(&mut &b""[..]).unwrap().is_none());
        assert!(read_frame(&mut &b"{\"arrays\":[{\"name\":\"x\",\"dtype\":\"f32\",\"shape\":[4]}]}\n\x00\x00"[..]).is_err(), "truncated");
    }

    fn python() -> Option<PathBuf> {
        find_python(None, "numpy").ok().filter(|p| p.exists())
    }

    /// Against a real Python server: replies, the server's own errors, a crash and a hang.
    #[test]
    fn a_server_answers_reports_its_errors_and_dies_loudly() {
        let Some(python) = python() else {
            panic!("no project venv with numpy: run .ci/setup");
        };
        let source = r#"
import os, time
def handle(op, header, arrays):
    if op == "double":
        return {"n": header["n"] * 2}, [("x", arrays["x"] * 2)]
    if op == "fail":
        raise ValueError("asked to fail")
    if op == "crash":
        print("about to crash", file=sys.stderr, flush=True)
        os.kill(os.getpid(), 9)
    if op == "hang":
        time.sleep(60)
    raise KeyError(op)
serve(handle)
"#;
        let launch = Launch { name: "test".into(), python, source: source.into(), env: Vec::new(), timeout: Duration::from_secs(20) };
        let mut s = Server::start(launch.clone()).unwrap();
        let mut f = Map::new();
        f.insert("n".into(), Value::from(21));
        let r = s.call("double", f, &[Blob::f32("x", &[2], &[1.5, -1.0])]).unwrap();
        assert_eq!(r.fields["n"], 42);
        assert_eq!(r.array("x").unwrap().to_f32().unwrap(), vec![3.0, -2.0]);
        let e = s.call("fail", Map::new(), &[]).unwrap_err();
        assert_eq!(e, "test server: fail: ValueError: asked to fail");
        assert!(s.alive(), "a handler's error leaves the server serving");
        let e = s.call("crash", Map::new(), &[]).unwrap_err();
        assert!(e.contains("exited during 'crash' (signal 9)") && e.contains("about to crash"), "{e}");
        assert!(!s.alive());
        assert!(s.call("double", Map::new(), &[]).unwrap_err().contains("is dead"));
        let mut s = Server::start(Launch { timeout: Duration::from_millis(1500), ..launch }).unwrap();
        let e = s.call("hang", Map::new(), &[]).unwrap_err();
        assert!(e.contains("did not answer within 1.5 s and was killed"), "{e}");
    }
}
