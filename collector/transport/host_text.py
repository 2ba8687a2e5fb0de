"""Text a host sent (an error line, its stderr) made safe to print, store and show.

Everything from a host is untrusted: control characters become spaces, a line is cut to a
limit, and of a failed command's output we keep the line that explains (see
:func:`failure_output`).
"""

from __future__ import annotations


def clean(text: str, limit: int = 200) -> str:
    """Untrusted text (it may come from the host) made one short printable line."""
    line = "".join(c if c.isprintable() else " " for c in text.strip().split("\n", 1)[0])
    return line[:limit] + ("…" if len(line) > limit else "")


def first_line(data: bytes, limit: int = 200) -> str:
    """The first non-empty line of a host's stderr, safe to print and store."""
    for raw in data.decode("utf-8", "replace").splitlines():
        if raw.strip():
            return clean(raw, limit)
    return ""


#: Output of at most this many lines is said whole; longer output by its last line.
SHORT_OUTPUT_LINES = 3


def failure_output(stderr: bytes, stdout: bytes = b"", limit: int = 300) -> str:
    """What a failed command said about its failure, safe to print and store.

    The line that explains comes last: sshd's "Could not chdir to home directory" (stderr)
    precedes nologin's "This account is currently not available." (which nologin prints on
    stdout), and a traceback ends with the exception.  So the last non-empty line leads, and
    short output adds the rest.  Stdout counts unless it is the probe's JSON.
    """
    texts = [stderr.decode("utf-8", "replace")]
    if not stdout.lstrip().startswith(b"{"):
        texts.append(stdout[-8192:].decode("utf-8", "replace"))
    lines = [clean(raw, limit) for text in texts for raw in text.splitlines() if raw.strip()]
    if not lines:
        return ""
    text = lines[-1]
    if 1 < len(lines) <= SHORT_OUTPUT_LINES:
        text += f" (also said: {'; '.join(lines[:-1])})"
    return text[:limit] + ("…" if len(text) > limit else "")
