"""The Python side of metarl's simulator bridge: one framed request, one framed reply.

A frame is one line of JSON (the header) followed by raw little-endian arrays. The header's
"arrays" lists them in order, each as {"name", "dtype" ("u8", "f32", "i32", "f64"), "shape"};
the payload is their bytes, one after the other. A request's header also carries "op" and the
operation's fields; a reply's carries "ok" and either the operation's fields or "error".

A server is `serve(handler)`: handler(op, header, arrays) returns (fields, [(name, ndarray)]).
Whatever it raises goes back as {"ok": false, "error": "<type>: <message>"} in one line, with
the traceback on stderr, and the server keeps serving.
"""

import json
import sys
import traceback

import numpy as np

DTYPES = {"u8": np.uint8, "f32": np.float32, "i32": np.int32, "f64": np.float64}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def read_frame(stream):
    line = stream.readline()
    if not line:
        return None, None
    header = json.loads(line)
    arrays = {}
    for spec in header.get("arrays", []):
        dtype = np.dtype(DTYPES[spec["dtype"]]).newbyteorder("<")
        count = int(np.prod(spec["shape"], dtype=np.int64))
        raw = stream.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise EOFError("truncated frame")
        arrays[spec["name"]] = np.frombuffer(raw, dtype=dtype).reshape(spec["shape"])
    return header, arrays


def write_frame(stream, fields, arrays):
    specs, payload = [], []
    for name, a in arrays:
        a = np.ascontiguousarray(a)
        if a.dtype not in NAMES:
            a = a.astype(np.float32)
        specs.append({"name": name, "dtype": NAMES[a.dtype], "shape": list(a.shape)})
        payload.append(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    header = dict(fields)
    header["arrays"] = specs
    stream.write(json.dumps(header).encode() + b"\n")
    for p in payload:
        stream.write(p)
    stream.flush()


def serve(handler):
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Anything a library prints must not corrupt the frames: stdout is ours alone.
    sys.stdout = sys.stderr
    while True:
        header, arrays = read_frame(stdin)
        if header is None or header.get("op") == "close":
            return
        try:
            fields, out = handler(header["op"], header, arrays)
            write_frame(stdout, dict(fields, ok=True), out)
        except Exception as e:  # noqa: BLE001: every failure goes back as one line
            traceback.print_exc(file=sys.stderr)
            message = f"{type(e).__name__}: {e}".replace("\n", " ")
            write_frame(stdout, {"ok": False, "error": message}, [])
