#!/bin/sh
# osmon shell probe: one snapshot of a Linux host as one JSON object on stdout, for the hosts
# that have no usable Python (BusyBox, Alpine and distroless images, OpenWrt, rescue systems).
#
# It prints the same document as remote_probe/probe.py, section for section ("probe": 1,
# system, cpu, memory, swap, disks, disk_io, net, processes, users, pressure where the kernel
# has it, checks when asked, errors), so the collector checks it with the same schema gate.
# Run it by hand for a local look: `sh remote_probe/probe.sh`.
#
# Constraints, and why:
# - POSIX sh and the tools of every BusyBox (awk, df, od, wc, uname; setsid, mktemp and sleep
#   for checks): no bashism, no GNU option, no `ps` or `free` to parse.  It runs under BusyBox
#   ash, dash and `bash --posix`, with BusyBox awk, mawk or gawk; LC_ALL=C so awk counts bytes.
# - Cheap: a handful of processes a run.  Nearly everything is two awk programs: SCAN reads
#   /proc (a shell glob lists the pids and awk opens the files itself: no fork per process),
#   ASSEMBLE adds what needs a tool: `df -P -k` for the real file systems, `od` for the
#   command lines of the top processes and for utmp, which hold NUL bytes awk cannot read.
# - Raw counters only, never a sleep: the collector derives rates and percentages between
#   passes, and per-process CPU percent from the counters it sends back (proc_prev).
# - Parameters are data, never code: the collector sends this file on stdin after two
#   functions whose bodies are quoted here-documents (`osmon_params`: one "key value" line per
#   parameter; `osmon_input`: the checks and the previous per-process counters).  A value is
#   only compared, exported as an environment variable or passed as one argument; a check runs
#   as an argv list ("$@"), never through eval or `sh -c`.  Run from a file, the defaults apply.
# - Strings are escaped for JSON in one place (u8 in OSMON_LIB): quotes, backslashes and
#   control characters escaped, bytes that are not UTF-8 replaced by U+FFFD one per ill-formed
#   sequence, as probe.py's decode(errors="replace") does: a hostile process name or mount
#   point stays data.
# - Bounded: the process scan stops at max_processes and max_scan_s; a check is killed with its
#   process group at its timeout and its output files are capped (`ulimit -f`); a network file
#   system is measured only with network_fs, then within statvfs_timeout_s.
#
# What it does not do that probe.py does: no in-probe CPU interval (cpu_sample_s is ignored:
# a host's first pass has no CPU percent, and per-process CPU is the lifetime average until the
# collector has counters); clock ticks are 100 a second (USER_HZ on every Linux architecture
# but alpha; the clk_tck parameter overrides it); disk sizes come from df in KiB (exact for
# every block size that is a multiple of 1 KiB); a check that cannot be killed (stuck in the
# kernel) holds the probe until the collector's host deadline; the system's Python is null.

# Shared awk functions.  Every program sets RS to "\001" (a byte /proc text never holds) once
# its input is read, so `slurp` gets a whole file in one record.
OSMON_LIB='
function lib_init() {
	NULC = sprintf("%c", 0)
	if (length(NULC) != 1) NULC = ""
	RS = "\001"
}
# Byte values and JSON escapes, built on first use (most runs never need them).
function ord_init(   i, c) {
	if (ORD_READY++) return
	for (i = 1; i < 256; i++) { c = sprintf("%c", i); ORD[c] = i; CHR[i] = c }
}
function esc_init(   i, h) {
	if (ESC_READY++) return
	h = "0123456789abcdef"
	for (i = 0; i < 32; i++) ESC[i] = "\\u00" substr(h, int(i / 16) + 1, 1) substr(h, i % 16 + 1, 1)
	ESC[8] = "\\b"; ESC[9] = "\\t"; ESC[10] = "\\n"; ESC[12] = "\\f"; ESC[13] = "\\r"
}
# The whole file; SLURP_OK says whether it could be read.
function slurp(path,    text, line, n, r) {
	text = ""; n = 0
	while ((r = (getline line < path)) > 0) text = text (n++ ? "\001" : "") line
	SLURP_OK = (r == 0 || n > 0)
	close(path)
	return text
}
function oserr(path) { return "OSError: cannot read " path }
function err(key, msg) {
	if (!(key in ERRAT)) { ERRAT[key] = ++NERR; ERRKEY[NERR] = key }
	ERRMSG[ERRAT[key]] = msg
}
function isint(s) { return s ~ /^[-+]?[0-9]+$/ }
function isnum(s) { return s ~ /^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$/ }
function trim(s) { sub(/^[ \t\n\r\f\013]+/, "", s); sub(/[ \t\n\r\f\013]+$/, "", s); return s }
# Integers at any size a double holds exactly (mawk printf %d stops at 2^31).
function ji(x) { return sprintf("%.0f", x) }
# The shortest decimal that reads back as the same double, as Python prints a float.
function jn(x,    s) {
	if (x != x || x > 1e308 || x < -1e308) return "null"
	s = sprintf("%.15g", x)
	if (s + 0 != x) { s = sprintf("%.16g", x); if (s + 0 != x) s = sprintf("%.17g", x) }
	if (s ~ /^-?[0-9]+$/) s = s ".0"
	return s
}
# part/whole in percent, clamped to 0..100 and rounded, as probe.py _pct (0.0 for nothing).
function pct(part, whole, digits,    v) {
	if (whole <= 0) return "0.0"
	v = part * 100.0 / whole
	if (v > 100) v = 100
	if (v < 0) v = 0
	return jn(sprintf("%." digits "f", v) + 0)
}
# s with every ill-formed UTF-8 sequence replaced by U+FFFD (one per maximal ill-formed
# subpart, as Python decodes); with json set, also escaped for a JSON string.
function u8(s, json,    n, i, c, b, out, buf, need, lo, hi, j, k, seq, cb, ok, parts, np) {
	if (json) {
		if (index(s, "\\")) { np = split(s, parts, "\\"); s = parts[1]; for (k = 2; k <= np; k++) s = s "\\\\" parts[k] }
		if (index(s, "\"")) { np = split(s, parts, "\""); s = parts[1]; for (k = 2; k <= np; k++) s = s "\\\"" parts[k] }
		if (s ~ /[\001-\037]/) {
			ord_init(); esc_init()
			for (c = 1; c < 32; c++)
				if (index(s, CHR[c])) { np = split(s, parts, CHR[c]); s = parts[1]; for (k = 2; k <= np; k++) s = s ESC[c] parts[k] }
		}
		if (NULC != "" && index(s, NULC)) { esc_init(); np = split(s, parts, NULC); s = parts[1]; for (k = 2; k <= np; k++) s = s ESC[0] parts[k] }
	}
	# regular expressions are literals: BusyBox awk compiles a string one at every use
	if (s !~ /[\200-\377]/ || s ~ /^([\001-\177]|[\302-\337][\200-\277]|\340[\240-\277][\200-\277]|[\341-\354\356\357][\200-\277][\200-\277]|\355[\200-\237][\200-\277]|\360[\220-\277][\200-\277][\200-\277]|[\361-\363][\200-\277][\200-\277][\200-\277]|\364[\200-\217][\200-\277][\200-\277])*$/) return s
	ord_init()
	n = length(s); out = ""; buf = ""; i = 1
	while (i <= n) {
		if (length(buf) > 4096) { out = out buf; buf = "" }
		c = substr(s, i, 1); b = (c in ORD) ? ORD[c] : 0
		if (b < 128) { buf = buf c; i++; continue }
		need = 0
		if (b >= 194 && b <= 223) { need = 1; lo = 128; hi = 191 }
		else if (b == 224) { need = 2; lo = 160; hi = 191 }
		else if ((b >= 225 && b <= 236) || b == 238 || b == 239) { need = 2; lo = 128; hi = 191 }
		else if (b == 237) { need = 2; lo = 128; hi = 159 }
		else if (b == 240) { need = 3; lo = 144; hi = 191 }
		else if (b >= 241 && b <= 243) { need = 3; lo = 128; hi = 191 }
		else if (b == 244) { need = 3; lo = 128; hi = 143 }
		if (!need) { buf = buf (json ? "\\ufffd" : "\357\277\275"); i++; continue }
		seq = c; j = i + 1; ok = 1
		for (k = 1; k <= need; k++) {
			if (j > n) { ok = 0; break }
			c = substr(s, j, 1); cb = (c in ORD) ? ORD[c] : 0
			if (cb < lo || cb > hi) { ok = 0; break }
			seq = seq c; j++; lo = 128; hi = 191
		}
		buf = buf (ok ? seq : (json ? "\\ufffd" : "\357\277\275"))
		i = j
	}
	return out buf
}
function jstr(s) {
	if (s !~ /[^ -~]/ && !index(s, "\"") && !index(s, "\\")) return "\"" s "\""
	return "\"" u8(s, 1) "\""
}
# Characters (code points) of valid UTF-8, and its first n characters.
function chars(s,    t) { t = s; return length(s) - gsub(/[\200-\277]/, "", t) }
function cutchars(s, n,    i, len, c, count) {
	if (length(s) <= n) return s
	if (s !~ /[\200-\377]/) return substr(s, 1, n)
	ord_init()
	len = length(s); count = 0
	for (i = 1; i <= len; i++) {
		c = ORD[substr(s, i, 1)]
		if ((c < 128 || c >= 192) && ++count > n) return substr(s, 1, i - 1)
	}
	return s
}
# A field of a tab-separated line between the two programs: backslash, tab, line feed and
# carriage return as \ooo, undone by unescape (the escape of /proc/mounts).
function fld(s,    parts, np, k) {
	if (index(s, "\\")) { np = split(s, parts, "\\"); s = parts[1]; for (k = 2; k <= np; k++) s = s "\\134" parts[k] }
	if (index(s, "\t")) { np = split(s, parts, "\t"); s = parts[1]; for (k = 2; k <= np; k++) s = s "\\011" parts[k] }
	if (index(s, "\n")) { np = split(s, parts, "\n"); s = parts[1]; for (k = 2; k <= np; k++) s = s "\\012" parts[k] }
	if (index(s, "\r")) { np = split(s, parts, "\r"); s = parts[1]; for (k = 2; k <= np; k++) s = s "\\015" parts[k] }
	return s
}
function unescape(s,    out, p, o) {
	if (!index(s, "\\")) return s
	out = ""
	while ((p = index(s, "\\")) > 0) {
		o = substr(s, p + 1, 3)
		if (o ~ /^[0-7][0-7][0-7]$/) {
			out = out substr(s, 1, p - 1) sprintf("%c", (substr(o, 1, 1) * 64 + substr(o, 2, 1) * 8 + substr(o, 3, 1)) % 256)
			s = substr(s, p + 4)
		} else { out = out substr(s, 1, p); s = substr(s, p + 1) }
	}
	return out s
}
function uptime_now(   a) { split(slurp("/proc/uptime"), a, " "); return a[1] + 0 }
'

# SCAN: every /proc family, the process scan, and what ASSEMBLE must complete.
# argv: the pids (names under proc_root); stdin: osmon_input (checks, previous counters);
# environment: OSMON_P_<key> (the parameters), OSMON_ARCH, OSMON_BLOCK.
# stdout: the finished sections; /dev/stderr: lines for the shell (V values, M mounts to
# measure, P pids whose command line is needed, K/A/B checks), "%%data", then lines for
# ASSEMBLE.  OSMON_SCAN_CHECKS (only when checks were asked for) and OSMON_SCAN_END follow.
OSMON_SCAN='
BEGIN {
	for (i = 1; i < ARGC; i++) if (ARGV[i] ~ /^[0-9]+$/) PIDARG[++NPID] = ARGV[i]
	ARGC = 1
}
$1 == "tick" { NTICK++; if (NF == 4 && ($2 " " $3 " " $4) ~ /^[1-9][0-9]* [0-9]+ [0-9]+$/) PREVT[$2] = $3 " " $4; next }
$1 == "prev_uptime" { PREV_SEEN = 1; PREV_UP = $2; next }
$1 == "prev_boot_id" { PREV_BOOT = substr($0, 14); next }
$1 ~ /^check/ { CL[++NCL] = $0; next }
END {
	lib_init()
	srand(); NOW = srand()
	CTL = ""; DATA = ""; JS = "{\"probe\":1"
	read_params()
	STAT_TEXT = slurp(PROC "/stat"); STAT_OK = SLURP_OK
	MEMINFO_TEXT = slurp(PROC "/meminfo"); MEMINFO_OK = SLURP_OK
	fam_system(); fam_cpu(); fam_memory(); fam_swap(); fam_disks(); fam_disk_io(); fam_net()
	fam_processes(); fam_pressure()
}

function problem(text) { PROBLEMS = PROBLEMS (PROBLEMS == "" ? "" : "; ") text }
function pstr(key, def,    v) {
	if (!(("OSMON_P_" key) in ENVIRON)) return def
	v = ENVIRON["OSMON_P_" key]
	if (v == "") { problem(key " must be a non-empty string"); return def }
	return v
}
function pbool(key, def,    v) {
	if (!(("OSMON_P_" key) in ENVIRON)) return def
	v = ENVIRON["OSMON_P_" key]
	if (v == "true") return 1
	if (v == "false") return 0
	problem(key " must be true or false")
	return def
}
# A number clamped to [lo, hi] (probe.py PARAM_RANGES); integer ones truncated as int() does.
function pnum(key, def, lo, hi, integer,    v) {
	if (!(("OSMON_P_" key) in ENVIRON)) return def
	v = ENVIRON["OSMON_P_" key]
	if (!isnum(v)) { problem(key " must be a number"); return def }
	v += 0
	if (v < lo) v = lo
	if (v > hi) v = hi
	return integer ? int(v) : v
}
# In the order of probe.py DEFAULTS, so that the problems read the same.
function read_params() {
	PROBLEMS = ""
	pnum("cpu_sample_s", 0, 0, 5, 0)
	NETFS = pbool("network_fs", 0)
	STATVFS_TIMEOUT = pnum("statvfs_timeout_s", 2, 0.01, 30, 0)
	TOP_N = pnum("top_n", 10, 0, 100, 1)
	LOOPBACK = pbool("include_loopback", 0)
	MAX_PROCS = pnum("max_processes", 20000, 0, 1000000, 1)
	MAX_SCAN = pnum("max_scan_s", 5, 0.1, 60, 0)
	PROC = pstr("proc_root", "/proc")
	pstr("sys_root", "/sys")
	ETC = pstr("etc_root", "/etc")
	pstr("utmp_path", "/var/run/utmp")
	pbool("utmp_check_pids", 1)
	pbool("self_timing", 0)
	TCK = pnum("clk_tck", 0, 0, 1000000, 1)
	PAGE = pnum("page_size", 0, 0, 1073741824, 1)
	BUDGET = pnum("checks_budget_s", 0, 0, 3600, 0)
	CMDLINES = pbool("command_lines", 1)
	if (PROBLEMS != "") err("params", "ValueError: " PROBLEMS)
	if (!TCK) TCK = 100
	if (!PAGE) PAGE = page_size()
	CTL = CTL "V\tstatvfs_timeout_ms\t" ji(STATVFS_TIMEOUT * 1000) "\n"
}
# The page size without getconf: one mapping counted in kB (status) and in pages (statm).
function page_size(   a, n, i, f, kb, pages, ratio) {
	n = split(slurp("/proc/self/status"), a, "\n")
	for (i = 1; i <= n; i++) if (substr(a[i], 1, 7) == "VmSize:") { split(a[i], f, " "); kb = f[2] }
	split(slurp("/proc/self/statm"), f, " "); pages = f[1]
	if (!(kb > 0 && pages > 0)) return 4096
	ratio = kb * 1024 / pages
	return ratio < 6000 ? 4096 : ratio < 12000 ? 8192 : ratio < 30000 ? 16384 : 65536
}

# hostname and kernel from /proc/sys/kernel, so a fixture pins them (probe.py does the same).
function fam_system(   host, kern, a, up, bt, arch) {
	host = slurp(PROC "/sys/kernel/hostname")
	if (!SLURP_OK) err("system:hostname", oserr(PROC "/sys/kernel/hostname"))
	host = trim(host)
	if (host == "") host = trim(slurp("/proc/sys/kernel/hostname"))
	kern = slurp(PROC "/sys/kernel/osrelease")
	if (!SLURP_OK) err("system:kernel", oserr(PROC "/sys/kernel/osrelease"))
	kern = trim(kern)
	if (kern == "") kern = trim(slurp("/proc/sys/kernel/osrelease"))
	up = uptime_of(slurp(PROC "/uptime"), "system")
	if (up == "") return
	bt = STAT_OK ? btime(STAT_TEXT) : ""
	if (bt == "") bt = int(NOW - up)
	arch = ENVIRON["OSMON_ARCH"]
	JS = JS ",\"system\":{\"hostname\":" jstr(host) ",\"os\":\"Linux\",\"kernel\":" \
		(kern == "" ? "null" : jstr(kern)) ",\"arch\":" (arch == "" ? "null" : jstr(arch)) \
		",\"boot_time\":" ji(bt) ",\"uptime_s\":" jn(up) ",\"python\":null}"
}
function uptime_of(text, key,    a) {
	if (!SLURP_OK) { err(key, oserr(PROC "/uptime")); return "" }
	if (split(text, a, " ") < 1 || !isnum(a[1])) { err(key, "ValueError: " PROC "/uptime does not start with a number"); return "" }
	return a[1] + 0
}
function btime(text,    a, n, i, f) {
	n = split(text, a, "\n")
	for (i = 1; i <= n; i++)
		if (substr(a[i], 1, 6) == "btime ") { split(a[i], f, " "); if (isint(f[2])) return f[2] + 0 }
	return ""
}

# One cpu line of /proc/stat as seconds per state; states an old kernel lacks count as 0.
function cpu_times(name, f, nf,    i, out) {
	if (nf - 1 < 4) { CPU_ERR = "ValueError: " name " line has " (nf - 1) " values, expected at least 4"; return "" }
	out = ""
	for (i = 1; i <= 8; i++) {
		if (i + 1 <= nf && !isint(f[i + 1])) { CPU_ERR = "ValueError: " name " holds " f[i + 1] ", not an integer"; return "" }
		out = out (i > 1 ? "," : "") "\"" CPU_STATES[i] "\":" jn(i + 1 <= nf ? (f[i + 1] + 0) / TCK : 0)
	}
	return "{" out "}"
}
function fam_cpu(   a, n, i, f, nf, total, cores, ncore, lt, la, load) {
	if (!STAT_OK) { err("cpu", oserr(PROC "/stat")); return }
	n = split(STAT_TEXT, a, "\n")
	if (substr(a[n], 1, 3) == "cpu") { err("cpu", "ValueError: /proc/stat ends inside a cpu line (truncated)"); return }
	split("user nice system idle iowait irq softirq steal", CPU_STATES, " ")
	total = ""; cores = ""; ncore = 0; CPU_ERR = ""
	for (i = 1; i <= n; i++) {
		if (substr(a[i], 1, 3) != "cpu") continue
		nf = split(a[i], f, " ")
		if (f[1] == "cpu") total = cpu_times(f[1], f, nf)
		else if (substr(f[1], 4) ~ /^[0-9]+$/) cores = cores (ncore++ ? "," : "") cpu_times(f[1], f, nf)
		if (CPU_ERR != "") { err("cpu", CPU_ERR); return }
	}
	if (total == "") { err("cpu", "ValueError: /proc/stat has no aggregate cpu line"); return }
	lt = slurp(PROC "/loadavg")
	load = "null"
	if (!SLURP_OK) err("cpu:load", oserr(PROC "/loadavg"))
	else if ((n = split(lt, la, " ")) < 3) err("cpu:load", "ValueError: /proc/loadavg has " n " fields, expected at least 3")
	else if (!isnum(la[1]) || !isnum(la[2]) || !isnum(la[3])) err("cpu:load", "ValueError: /proc/loadavg does not start with 3 numbers")
	else load = "[" jn(la[1] + 0) "," jn(la[2] + 0) "," jn(la[3] + 0) "]"
	JS = JS ",\"cpu\":{\"count\":" (ncore ? ncore : 1) ",\"times\":" total ",\"per_core_times\":[" cores \
		"],\"load\":" load ",\"percent\":null,\"per_core\":null}"
}

# /proc/meminfo into MI (bytes); lines that do not parse are skipped, callers check keys.
function parse_meminfo(text,    a, n, i, key, p, np, f) {
	if (MI_READY++) return
	n = split(text, a, "\n")
	for (i = 1; i <= n; i++) {
		if (!(p = index(a[i], ":"))) continue
		key = trim(substr(a[i], 1, p - 1))
		np = split(substr(a[i], p + 1), f, " ")
		if (np < 1 || !isint(f[1])) continue
		MI[key] = (np > 1 && f[2] == "kB") ? f[1] * 1024 : f[1] + 0
	}
}
function need_mi(family, key) {
	if (key in MI) return 1
	err(family, "ValueError: /proc/meminfo has no usable " key " line")
	return 0
}
# MemAvailable, or for kernels older than 3.14 the estimate of psutil from the zone watermarks.
function fam_memory(   total, avail, low, a, n, i, f, zok, pagecache) {
	if (!MEMINFO_OK) { err("memory", oserr(PROC "/meminfo")); return }
	parse_meminfo(MEMINFO_TEXT)
	if (!need_mi("memory", "MemTotal") || !need_mi("memory", "MemFree")) return
	total = MI["MemTotal"]
	if ("MemAvailable" in MI) avail = MI["MemAvailable"]
	else {
		n = split(slurp(PROC "/zoneinfo"), a, "\n"); zok = SLURP_OK; low = 0
		if (!zok) err("memory:zoneinfo", oserr(PROC "/zoneinfo"))
		for (i = 1; i <= n && zok; i++)
			if (split(a[i], f, " ") == 2 && f[1] == "low") {
				if (!isint(f[2])) { err("memory:zoneinfo", "ValueError: a low watermark is not an integer"); zok = 0 }
				low += f[2]
			}
		low *= PAGE
		avail = MI["MemFree"] + MI["Cached"]
		if (zok && ("Active(file)" in MI) && ("Inactive(file)" in MI) && ("SReclaimable" in MI)) {
			pagecache = MI["Active(file)"] + MI["Inactive(file)"]
			avail = MI["MemFree"] - low
			avail += pagecache - (pagecache / 2.0 < low ? pagecache / 2.0 : low)
			avail -= (MI["SReclaimable"] / 2.0 < low ? MI["SReclaimable"] / 2.0 : low)
			avail = int(avail)
		}
	}
	if (avail > total) avail = total
	if (avail < 0) avail = 0
	JS = JS ",\"memory\":{\"total\":" ji(total) ",\"available\":" ji(avail) ",\"used\":" ji(total - avail) \
		",\"percent\":" pct(total - avail, total, 1) ",\"buffers\":" ji(MI["Buffers"]) \
		",\"cached\":" ji(MI["Cached"] + MI["SReclaimable"]) "}"
}
function fam_swap(   total, used) {
	if (!MEMINFO_OK) { err("swap", oserr(PROC "/meminfo")); return }
	parse_meminfo(MEMINFO_TEXT)
	if (!need_mi("swap", "SwapTotal") || !need_mi("swap", "SwapFree")) return
	total = MI["SwapTotal"]; used = total - MI["SwapFree"]
	if (used < 0) used = 0
	JS = JS ",\"swap\":{\"total\":" ji(total) ",\"used\":" ji(used) ",\"percent\":" pct(used, total, 1) "}"
}

# A path for the shell: as is, or with control bytes and backslashes as \0ooo for printf %b,
# always three digits: \012 before a 7 would be read as \0127, a "W".
function shellpath(s,    out, i, n, c) {
	if (s !~ /[\001-\037\\]/) return "P\t" s
	ord_init()
	out = ""; n = length(s)
	for (i = 1; i <= n; i++) {
		c = substr(s, i, 1)
		out = out ((ORD[c] < 32 || c == "\\") ? sprintf("\\0%03o", ORD[c]) : c)
	}
	return "E\t" out
}
function set_of(words, arr,    a, n, i) { n = split(words, a, " "); for (i = 1; i <= n; i++) arr[a[i]] = 1 }
# The real file systems, chosen as probe.py select_mounts does (psutil all=False): block
# file systems of /proc/filesystems, network and FUSE ones only with network_fs (then timed),
# fuseblk timed, squashfs skipped, overlay only as "/", the visible entry of a mount point,
# one mount per device (the shortest path), sorted by path.
function fam_disks(   t, a, n, i, f, m, dev, fs, nvis, j, timed, k, nsel, tmp, fsok, blk, len1, len2) {
	t = slurp(PROC "/self/mounts")
	if (!SLURP_OK) { t = slurp(PROC "/mounts"); if (!SLURP_OK) { err("disks", oserr(PROC "/mounts")); return } }
	set_of("nfs nfs4 cifs smb3 smbfs sshfs fuse ceph glusterfs 9p afs lustre gpfs beegfs davfs ncpfs coda orangefs ocfs2 gfs2", NETWORK_FS)
	blk = slurp(PROC "/filesystems"); fsok = SLURP_OK
	if (!fsok) {
		err("disks:filesystems", oserr(PROC "/filesystems"))
		set_of("proc sysfs tmpfs devtmpfs devpts cgroup cgroup2 overlay autofs mqueue hugetlbfs debugfs tracefs securityfs pstore bpf configfs fusectl binfmt_misc rpc_pipefs nsfs ramfs efivarfs selinuxfs rootfs aufs shm none", PSEUDO_FS)
	} else {
		BLOCK_FS["zfs"] = 1
		n = split(blk, a, "\n")
		for (i = 1; i <= n; i++) if (split(a[i], f, " ") == 1) BLOCK_FS[f[1]] = 1
	}
	n = split(t, a, "\n"); nvis = 0
	for (i = 1; i <= n; i++) {
		if (split(a[i], f, " ") < 3) continue
		m = unescape(f[2])
		if (!(m in VDEV)) VISORD[++nvis] = m
		VDEV[m] = unescape(f[1]); VFS[m] = f[3]
	}
	nsel = 0
	for (j = 1; j <= nvis; j++) {
		m = VISORD[j]; dev = VDEV[m]; fs = VFS[m]
		timed = (fs == "fuseblk")
		if ((fs in NETWORK_FS) || substr(fs, 1, 5) == "fuse.") { if (!NETFS) continue; timed = 1 }
		else if (fs == "squashfs") continue
		else if (fs == "overlay") { if (m != "/") continue }
		else if (!timed && (fsok ? !(fs in BLOCK_FS) : (fs in PSEUDO_FS))) continue
		if (dev == "" || dev == "none") continue
		if (dev in BYDEV) {
			k = BYDEV[dev]; len1 = chars(u8(m, 0)); len2 = chars(u8(SELM[k], 0))
			if (len1 < len2 || (len1 == len2 && m < SELM[k])) { SELM[k] = m; SELF[k] = fs; SELT[k] = timed }
			continue
		}
		BYDEV[dev] = ++nsel; SELM[nsel] = m; SELD[nsel] = dev; SELF[nsel] = fs; SELT[nsel] = timed
	}
	for (i = 1; i <= nsel; i++) KEY[i] = u8(SELM[i], 0)  # code point order, as Python sorts
	heap_sort(nsel, "key")
	if (nsel > 1024) { err("disks:truncated", "truncated to 1024 of " nsel " file systems"); nsel = 1024 }
	DATA = DATA "DISKS\t" nsel "\n"
	for (i = 1; i <= nsel; i++) {
		k = ORDER[i]
		CTL = CTL "M\t" i "\t" SELT[k] "\t" shellpath(SELM[k]) "\n"
		DATA = DATA "S\t" i "\t" jstr(SELM[k]) "\t" fld(SELD[k]) "\t" fld(SELF[k]) "\n"
	}
}

# Heap sort of ORDER[1..n] (indexes): by KEY ascending (SORT_BY "key"), or by WEIGHT
# descending (SORT_BY "weight"); ties keep their order, as a stable sort does.  O(n log n):
# a container host may have thousands of interfaces or mounts.
function first(a, b) {
	if (SORT_BY == "key") return KEY[a] < KEY[b] || (KEY[a] == KEY[b] && a < b)
	return WEIGHT[a] > WEIGHT[b] || (WEIGHT[a] == WEIGHT[b] && a < b)
}
function sift(root, end,    child, tmp) {
	while ((child = 2 * root) <= end) {
		if (child < end && first(ORDER[child], ORDER[child + 1])) child++
		if (!first(ORDER[root], ORDER[child])) return
		tmp = ORDER[root]; ORDER[root] = ORDER[child]; ORDER[child] = tmp
		root = child
	}
}
function heap_sort(n, by,    i, tmp) {
	SORT_BY = by
	for (i = 1; i <= n; i++) ORDER[i] = i
	for (i = int(n / 2); i >= 1; i--) sift(i, n)
	for (i = n; i > 1; i--) { tmp = ORDER[1]; ORDER[1] = ORDER[i]; ORDER[i] = tmp; sift(1, i - 1) }
}
# ENTRY[1..n] as a JSON list; beyond `cap`, only the heaviest (WEIGHT), in their order.
function capped(family, noun, n, cap,    i, keep, out) {
	if (n > cap) {
		err(family ":truncated", "truncated to " cap " of " n " " noun)
		heap_sort(n, "weight")
		for (i = 1; i <= cap; i++) keep[ORDER[i]] = 1
	}
	out = ""
	for (i = 1; i <= n; i++) if (n <= cap || (i in keep)) out = out (out == "" ? "" : ",") ENTRY[i]
	return out
}
# A whole physical disk: in /sys/block (partitions are not) and not a layer over others.
function is_physical(d, haveblock) {
	if (d ~ /^(loop|ram|zram|dm-|md|sr|fd|nbd|drbd)/) return 0
	if (haveblock) return index(ENVIRON["OSMON_BLOCK"], " " d " ") > 0
	if (d ~ /^(nvme|mmcblk)/) return d !~ /[0-9]p[0-9]+$/
	if (d ~ /^(sd|vd|hd|xvd)/) return d !~ /[0-9]$/
	return 1
}
function fam_disk_io(   t, a, n, i, f, cnt, haveblock) {
	t = slurp(PROC "/diskstats")
	if (!SLURP_OK) { err("disk_io", oserr(PROC "/diskstats")); return }
	haveblock = ENVIRON["OSMON_BLOCK"] != "-"
	n = split(t, a, "\n"); cnt = 0
	for (i = 1; i <= n; i++) {
		if (split(a[i], f, " ") < 14) continue
		if (!isint(f[4]) || !isint(f[6]) || !isint(f[8]) || !isint(f[10]) || !isint(f[13])) { err("disk_io", "ValueError: /proc/diskstats holds a counter that is not an integer"); return }
		if (!is_physical(f[3], haveblock)) continue
		ENTRY[++cnt] = "{\"device\":" jstr(f[3]) ",\"read_bytes\":" ji(f[6] * 512) ",\"write_bytes\":" ji(f[10] * 512) \
			",\"reads\":" ji(f[4]) ",\"writes\":" ji(f[8]) ",\"busy_ms\":" ji(f[13]) "}"
		WEIGHT[cnt] = (f[6] + f[10]) * 512
	}
	JS = JS ",\"disk_io\":[" capped("disk_io", "devices", cnt, 1024) "]"
}
# /proc/net/dev: the name before the first ":" (old kernels glue big counters to it).
function fam_net(   t, a, n, i, p, name, f, nf, cnt, k, e) {
	t = slurp(PROC "/net/dev")
	if (!SLURP_OK) { err("net", oserr(PROC "/net/dev")); return }
	split("1 2 3 4 9 10 11 12", NET_AT, " ")
	split("rx_bytes rx_packets rx_errors rx_drops tx_bytes tx_packets tx_errors tx_drops", NET_KEY, " ")
	n = split(t, a, "\n"); cnt = 0
	for (i = 1; i <= n; i++) {
		if (!(p = index(a[i], ":")) || index(a[i], "|")) continue
		name = trim(substr(a[i], 1, p - 1))
		if ((nf = split(substr(a[i], p + 1), f, " ")) < 16) { err("net", "ValueError: /proc/net/dev: " name " has " nf " counters, expected 16"); return }
		if (name == "lo" && !LOOPBACK) continue
		e = "{\"iface\":" jstr(name)
		for (k = 1; k <= 8; k++) {
			if (!isint(f[NET_AT[k]])) { err("net", "ValueError: /proc/net/dev: " name " has a counter that is not an integer"); return }
			e = e ",\"" NET_KEY[k] "\":" ji(f[NET_AT[k]])
		}
		ENTRY[++cnt] = e "}"
		WEIGHT[cnt] = f[1] + f[9]
	}
	JS = JS ",\"net\":[" capped("net", "interfaces", cnt, 1024) "]"
}

# Pressure stall information (Linux 4.20+): absent, not an error, where the kernel has none.
function fam_pressure(   r, res, a, n, i, f, nf, k, kv, kind, vals, cnt, out, lines, some, any) {
	split("cpu memory io", res, " ")
	out = ""; any = 0
	for (r = 1; r <= 3; r++) {
		n = split(slurp(PROC "/pressure/" res[r]), a, "\n")
		if (!SLURP_OK) continue
		lines = ""; some = 0
		for (i = 1; i <= n; i++) {
			nf = split(a[i], f, " ")
			if (nf < 1 || (f[1] != "some" && f[1] != "full") || (f[1] == "full" && res[r] == "cpu")) continue
			vals = ""; cnt = 0
			for (k = 2; k <= nf; k++) {
				if (!index(f[k], "=")) continue
				kind = substr(f[k], 1, index(f[k], "=") - 1); kv = substr(f[k], index(f[k], "=") + 1)
				if (kind == "avg10" || kind == "avg60" || kind == "avg300") {
					if (!isnum(kv)) { err("pressure", "ValueError: " res[r] " pressure holds " kv ", not a number"); return }
					kv += 0; if (kv > 100) kv = 100; if (kv < 0) kv = 0
					vals = vals (cnt++ ? "," : "") "\"" kind "\":" jn(kv)
				} else if (kind == "total") {
					if (!isint(kv)) { err("pressure", "ValueError: " res[r] " pressure holds " kv ", not an integer"); return }
					kv += 0; if (kv < 0) kv = 0
					vals = vals (cnt++ ? "," : "") "\"total\":" ji(kv)
				}
			}
			if (cnt == 4) { lines = lines (lines == "" ? "" : ",") "\"" f[1] "\":{" vals "}"; if (f[1] == "some") some = 1 }
		}
		if (some) out = out (any++ ? "," : "") "\"" res[r] "\":{" lines "}"
	}
	if (any) JS = JS ",\"pressure\":{" out "}"
}

# /proc/<pid>/stat: comm may hold spaces, parentheses and line feeds, so the fields start
# after the last ")".  The name has at most 63 bytes (a workqueue worker such as
# "kworker/0:1-events" has more than a task comm), so ")" is sought in 65 bytes from the "(".
# Split as $0 (the input is read by then): awk splits a record into fields far faster than
# split() fills an array, and only the first 300 bytes when they hold the 22 fields needed.
function parse_pid_stat(text,    l, r) {
	if (!(l = index(text, "(")) || !match(substr(text, l, 65), /[)][^)]*$/)) return 0
	r = l + RSTART - 1
	$0 = substr(text, r + 2, 300)
	if (NF < 23) $0 = substr(text, r + 2)
	if (NF < 22 || ($12 " " $13 " " $20 " " $22) !~ /^[0-9]+ [0-9]+ [0-9]+ [0-9]+$/) return 0
	PS_COMM = substr(text, l + 1, r - l - 1)
	PS_TICKS = $12 + $13; PS_START = $20; PS_RSS = $22 + 0
	return 1
}
# The concatenation of PART[1..n], pairwise: a string grown one piece at a time is copied
# whole at every step, which costs the square of its length.
function joined(n,    i, j) {
	if (n < 1) return ""
	while (n > 1) {
		for (i = j = 1; i <= n; i += 2) PART[j++] = PART[i] (i < n ? PART[i + 1] : "")
		n = j - 1
	}
	return PART[1]
}
# Count, top_n by CPU and by resident memory, and the counters for the next pass.  CPU
# percent of one CPU over the interval since the previous pass (proc_prev, same boot and
# start time), else the lifetime average, as probe.py process_cpu_percent.
function fam_processes(   i, len, pid, ord, nord, nscan, deadline, up, useprev, elapsed, boot, ticks, old, life, bycpu, bymem, ncpu, nmem, j, c, r, total, users, a, n, f, uid, u, memp, rss, seen, counters, nparts) {
	if (ENVIRON["OSMON_PIDS"] != "listed") { err("processes", "OSError: cannot list " PROC); return }
	# numeric order: the glob sorted the names as text, so a stable sort by length suffices
	for (i = 1; i <= NPID; i++) { len = length(PIDARG[i]); LENGTH[i] = len; LENGTHS[len]++ }
	for (len = nord = 1; len <= 10; len++) { AT[len] = nord; nord += LENGTHS[len] }
	for (i = 1; i <= NPID; i++) ord[AT[LENGTH[i]]++] = PIDARG[i]
	nord = NPID
	up = uptime_of(slurp(PROC "/uptime"), "processes:uptime")
	deadline = uptime_now() + MAX_SCAN
	nscan = 0
	for (i = 1; i <= nord && i <= MAX_PROCS; i++) {
		if (i % 256 == 0 && uptime_now() > deadline) break
		pid = ord[i]
		if (!parse_pid_stat(slurp(PROC "/" pid "/stat"))) continue
		SCANNED[++nscan] = pid; COMM[pid] = PS_COMM; TICKS[pid] = PS_TICKS; START[pid] = PS_START; RSSP[pid] = PS_RSS
	}
	useprev = 0
	if (PREV_SEEN) {
		if (!isnum(PREV_UP) || PREV_UP + 0 < 0) err("processes:prev", "ValueError: proc_prev.uptime must be a finite number >= 0")
		else if (NTICK > 100000) err("processes:prev", "ValueError: proc_prev.ticks has " NTICK " entries, at most 100000")
		else useprev = 1
	}
	boot = substr(trim(slurp(PROC "/sys/kernel/random/boot_id")), 1, 64)
	if (useprev && !(up != "" && up > PREV_UP + 0 && (boot == "" || PREV_BOOT == "" || boot == PREV_BOOT))) useprev = 0
	elapsed = useprev ? (up - PREV_UP) * TCK / 100.0 : 0
	counters = ""; nparts = 0
	for (i = 1; i <= nscan; i++) {
		pid = SCANNED[i]; ticks = TICKS[pid]
		if (i <= 100000) counters = counters (i > 1 ? ",\"" : "\"") pid "\":[" START[pid] "," ji(ticks) "]"
		if (i % 64 == 0) { PART[++nparts] = counters; counters = "" }
		old = ""
		if (useprev && (pid in PREVT)) { split(PREVT[pid], a, " "); if (a[1] + 0 == START[pid] + 0) old = a[2] + 0 }
		if (old != "" && old <= ticks) CPU[pid] = sprintf("%.1f", (ticks - old) / elapsed) + 0
		else if (up != "") { life = up * TCK - START[pid]; CPU[pid] = life > 0 ? sprintf("%.1f", ticks * 100.0 / life) + 0 : 0 }
		else CPU[pid] = ""
	}
	# top_n by CPU and by resident memory (ties: the lower pid), insertion into short lists;
	# the pids are scanned in increasing order, so a tie never displaces an earlier one
	ncpu = 0; nmem = 0
	for (i = 1; i <= nscan && TOP_N > 0; i++) {
		pid = SCANNED[i]; c = CPU[pid] + 0; r = RSSP[pid]
		if (ncpu < TOP_N || c > LASTCPU) {
			for (j = ncpu < TOP_N ? ++ncpu : ncpu; j > 1 && c > CPU[bycpu[j - 1]] + 0; j--) bycpu[j] = bycpu[j - 1]
			bycpu[j] = pid; LASTCPU = CPU[bycpu[ncpu]] + 0
		}
		if (nmem < TOP_N || r > LASTRSS) {
			for (j = nmem < TOP_N ? ++nmem : nmem; j > 1 && r > RSSP[bymem[j - 1]]; j--) bymem[j] = bymem[j - 1]
			bymem[j] = pid; LASTRSS = RSSP[bymem[nmem]]
		}
	}
	total = ""
	if (MEMINFO_OK) { parse_meminfo(MEMINFO_TEXT); if ("MemTotal" in MI) total = MI["MemTotal"] }
	if (total == "") err("processes:meminfo", MEMINFO_OK ? "KeyError: MemTotal" : oserr(PROC "/meminfo"))
	n = split(slurp(ETC "/passwd"), a, "\n")
	if (!SLURP_OK) err("processes:passwd", oserr(ETC "/passwd"))
	else for (i = 1; i <= n; i++)
		if (split(a[i], f, ":") >= 3 && f[3] ~ /^[0-9]+$/ && !((f[3] + 0) in users)) users[f[3] + 0] = f[1]
	DATA = DATA "PROC\t" NPID "\t" nscan "\t" (useprev ? "interval" : "lifetime") "\n"
	for (i = 1; i <= ncpu; i++) DATA = DATA "TC\t" bycpu[i] "\n"
	for (i = 1; i <= nmem; i++) DATA = DATA "TM\t" bymem[i] "\n"
	for (i = 1; i <= ncpu + nmem; i++) {
		pid = i <= ncpu ? bycpu[i] : bymem[i - ncpu]
		if (pid in seen) continue
		seen[pid] = 1
		n = split(slurp(PROC "/" pid "/status"), a, "\n"); uid = ""
		for (j = 1; j <= n; j++) if (substr(a[j], 1, 4) == "Uid:") { split(a[j], f, " "); if (isint(f[2])) uid = f[2] + 0; break }
		u = uid == "" ? "" : ((uid in users) ? users[uid] : uid "")
		rss = RSSP[pid] * PAGE
		memp = (total != "" && total > 0) ? jn(sprintf("%.2f", rss * 100.0 / total) + 0) : "null"
		DATA = DATA "TD\t" pid "\t" (CPU[pid] == "" ? "null" : jn(CPU[pid])) "\t" memp "\t" ji(rss) "\t" jstr(u) "\t" fld(COMM[pid]) "\n"
		if (CMDLINES) CTL = CTL "P\t" pid "\n"
	}
	PART[++nparts] = counters
	if (up != "") DATA = DATA "Q\t{\"uptime\":" jn(up) ",\"boot_id\":" (boot == "" ? "null" : jstr(boot)) ",\"ticks\":{" joined(nparts) "}}\n"
}
'

# With checks only: validates them as probe.py parse_check_specs does.  K lines (index,
# timeout in ms or 0 for an unusable command, output cap) and their A (argument) and B
# (argument holding a line break, \0ooo-escaped by the collector) lines go to the shell.
OSMON_SCAN_CHECKS='
END {
	k = 0; problems = ""; CHECK_MAXTO = 0
	for (i = 1; i <= NCL + 1; i++) {
		key = i <= NCL ? CL[i] : "check"
		sub(/ .*/, "", key)
		val = substr(CL[i], length(key) + 2)
		if (key == "check") {
			if (k && name != "") check_done(k, name, nargs, bad, to, cap)
			if (i > NCL) break
			if (k >= 200) { problems = problems (problems == "" ? "" : "; ") "checks over the limit of 200 were not run"; break }
			name = val
			if (name == "" || length(name) > 128) { problems = problems (problems == "" ? "" : "; ") "check #" (k + 1) " has no usable name"; name = ""; continue }
			if (name in CHECK_SEEN) { problems = problems (problems == "" ? "" : "; ") "check #" (k + 1) ": duplicate name, run once"; name = ""; continue }
			CHECK_SEEN[name] = 1; k++; nargs = 0; bad = 0; to = 10; cap = 65536
		} else if (name == "") continue
		else if (key == "check_timeout_s") { if (isnum(val)) to = val + 0 }
		else if (key == "check_max_output") { if (isnum(val)) cap = int(val + 0) }
		else if (key == "check_arg" || key == "check_argb") {
			if (val == "" || ++nargs > 1024) bad = 1
			else ARGL = ARGL (key == "check_arg" ? "A" : "B") "\t" k "\t" val "\n"
		}
	}
	if (problems != "") err("checks:params", "ValueError: " problems)
	CTL = CTL ARGL "V\tchecks_budget_ms\t" ji((BUDGET > 0 ? BUDGET : (CHECK_MAXTO > 25 ? CHECK_MAXTO : 25)) * 1000) "\n"
}
function check_done(k, name, nargs, bad, to, cap) {
	if (to < 0.1) to = 0.1
	if (to > 3600) to = 3600
	if (cap < 256) cap = 256
	if (cap > 1048576) cap = 1048576
	if (!nargs) bad = 1
	if (!bad && to > CHECK_MAXTO) CHECK_MAXTO = to
	CTL = CTL "K\t" k "\t" (bad ? 0 : ji(to * 1000)) "\t" cap "\n"
	DATA = DATA "CK\t" k "\t" jstr(name) "\t" (bad ? "bad" : ji(to * 1000)) "\t" cap "\n"
}
'

OSMON_SCAN_END='
END {
	for (i = 1; i <= NERR; i++) DATA = DATA "E\t" jstr(ERRKEY[i]) ":" jstr(ERRMSG[i]) "\n"
	printf "%s%%%%data\n%s", CTL, DATA > "/dev/stderr"
	printf "%s", JS
}
'

# ASSEMBLE: the rest of the document, from SCAN's data lines and what the shell gathered:
# "%%df" / "%%df1" / "%%dft" df answers, "%%wc" and "%%od" the sizes and bytes of utmp and
# the top processes' command lines; check results are files in OSMON_TMP.  It prints from
# ",\"disks\"" to the closing brace.  OSMON_ASM_USERS and OSMON_ASM_CHECKS are added when
# there is utmp to read or checks ran; OSMON_ASM_END comes last.
OSMON_ASSEMBLE='
BEGIN { part = "data" }
/^%%(df|wc|od|end)$/ { part = substr($0, 3); next }
/^%%dfidx\t/ { NBATCH = split(substr($0, 9), BATCHIDX, " "); next }
/^%%df1\t/ { part = "df1"; DF1 = substr($0, 7) + 0; DF1TEXT[DF1] = ""; next }
/^%%dft\t/ { TIMED[substr($0, 7) + 0] = 1; next }
part == "data" { data_line($0); next }
part == "df" { if ($0 !~ /^Filesystem/ && $0 != "") DFDATA[++NDF] = $0; next }
part == "df1" { DF1TEXT[DF1] = DF1TEXT[DF1] $0 "\n"; next }
part == "wc" { if (match($0, /^ *[0-9]+ /)) { WCN[++NWC] = substr($0, RSTART, RLENGTH) + 0; WCNAME[NWC] = substr($0, RSTART + RLENGTH) }; next }
part == "od" { od_line(); next }
END {
	lib_init()
	od_end()
	OUT = ""
	if (HAVE_DISKS) OUT = OUT ",\"disks\":[" disks() "]"
	if (HAVE_PROC) OUT = OUT ",\"processes\":" processes()
	if (ENVIRON["OSMON_UTMP_STATE"] == "missing") OUT = OUT ",\"users\":[]"
	else if (ENVIRON["OSMON_UTMP_STATE"] != "read")
		EJSON[++NE] = "\"users\":" jstr(ENVIRON["OSMON_UTMP_STATE"] == "noread" ? oserr(ENVIRON["OSMON_UTMP"]) : "OSError: od, needed to read utmp, is not on this host")
}
function data_line(line,    f) {
	split(line, f, "\t")
	if (f[1] == "E") EJSON[++NE] = substr(line, 3)
	else if (f[1] == "DISKS") { HAVE_DISKS = 1; NDISK = f[2] + 0 }
	else if (f[1] == "S") { SM[f[2]] = f[3]; SD[f[2]] = unescape(f[4]); SF[f[2]] = unescape(f[5]) }
	else if (f[1] == "PROC") { HAVE_PROC = 1; PCOUNT = f[2]; PSCAN = f[3]; PBASIS = f[4] }
	else if (f[1] == "TC") TOPC[++NTC] = f[2]
	else if (f[1] == "TM") TOPM[++NTM] = f[2]
	else if (f[1] == "TD") { TCPU[f[2]] = f[3]; TMEM[f[2]] = f[4]; TRSS[f[2]] = f[5]; TUSER[f[2]] = f[6]; TCOMM[f[2]] = unescape(f[7]) }
	else if (f[1] == "Q") COUNTERS = substr(line, 3)
	else if (f[1] == "CK") { CKN[++NCHK] = f[2]; CKNAME[f[2]] = f[3]; CKTO[f[2]] = f[4]; CKCAP[f[2]] = f[5] }
}
# "<prefix>:<mount>" as a JSON string, from the mount as a JSON string.
function mountkey(prefix, jmount) { return "\"" prefix ":" substr(jmount, 2) }
# One df -P -k line: "device blocks used available capacity% mount".  The device is skipped
# by its known length, so spaces or digits in it do not matter.
function df_numbers(line, dev,    rest) {
	rest = (substr(line, 1, length(dev)) == dev) ? substr(line, length(dev) + 1) : line
	if (!match(rest, /[ \t]+[0-9]+[ \t]+[0-9]+[ \t]+[0-9]+[ \t]+([0-9]+%|-)/)) return 0
	split(substr(rest, RSTART, RLENGTH), DFN, " ")
	return 1
}
function df_answer(text, dev,    a, n, j) {
	n = split(text, a, "\n")
	for (j = 1; j <= n; j++) if (a[j] !~ /^Filesystem/ && df_numbers(a[j], dev)) return 1
	return 0
}
# The first line of a df answer that is not a size: why the mount could not be measured.
function df_error(text,    a, n, j) {
	n = split(text, a, "\n")
	for (j = 1; j <= n; j++)
		if (a[j] != "" && a[j] !~ /^Filesystem/) { sub(/^[^:]*df: /, "", a[j]); return a[j] }
	return "df gave no answer"
}
function disks(   i, k, out, total, used, free, dev, dir) {
	for (i = 1; i <= NBATCH; i++) BATCHPOS[BATCHIDX[i] + 0] = i
	dir = ENVIRON["OSMON_TMP"]
	out = ""
	for (k = 1; k <= NDISK; k++) {
		dev = SD[k]
		if (k in TIMED) {
			if (dir == "") { EJSON[++NE] = mountkey("disks", SM[k]) ":" jstr(ENVIRON["OSMON_TMP_ERROR"]); continue }
			if (!df_answer(slurp(dir "/df" k ".out"), dev)) {
				slurp(dir "/df" k ".timeout")
				if (SLURP_OK) EJSON[++NE] = mountkey("disks", SM[k]) ":" jstr("TimeoutError: statvfs did not answer within " sprintf("%g", ENVIRON["OSMON_STATVFS_MS"] / 1000) " s (" SF[k] ")")
				else EJSON[++NE] = mountkey("disks", SM[k]) ":" jstr("OSError: " df_error(slurp(dir "/df" k ".err")))
				continue
			}
		} else if (k in DF1TEXT) {
			if (!df_answer(DF1TEXT[k], dev)) { EJSON[++NE] = mountkey("disks", SM[k]) ":" jstr("OSError: " df_error(DF1TEXT[k])); continue }
		} else if (!((k in BATCHPOS) && NDF == NBATCH && df_numbers(DFDATA[BATCHPOS[k]], dev))) {
			EJSON[++NE] = mountkey("disks", SM[k]) ":\"OSError: df gave no answer\""
			continue
		}
		total = DFN[1] * 1024; used = DFN[2] * 1024; free = DFN[3] * 1024
		out = out (out == "" ? "" : ",") "{\"mount\":" SM[k] ",\"device\":" jstr(dev) ",\"fstype\":" jstr(SF[k]) \
			",\"total\":" ji(total) ",\"used\":" ji(used) ",\"free\":" ji(free) ",\"percent\":" pct(used, used + free, 1) "}"
	}
	return out
}
# The od section: the bytes of the files of the wc section, in order.  utmp (first) is kept
# byte by byte (UT); a command line as its arguments (ARGS[file, n], NUL-separated, at most
# 4096 bytes as probe.py reads).  A command line that changed size between the two reads
# would shift every byte after it: then the totals differ and no command line is used.
function od_init(   i) {
	if (OD_READY++) return
	for (i = 0; i < 256; i++) BYTE[i ""] = sprintf("%c", i)
	OD_POS = 0; CUR = 0; NFILE = 0; CUR_END = 0
	for (i = 1; i <= NWC; i++)
		if (WCNAME[i] != "total") { NFILE++; FILE_AT[NFILE] = OD_POS; FILE_LEN[NFILE] = WCN[i]; FILE_NAME[NFILE] = WCNAME[i]; OD_POS += WCN[i] }
	WC_TOTAL = OD_POS; OD_POS = 0
}
function od_line(   i, v, off) {
	od_init()
	for (i = 1; i <= NF; i++) {
		while (OD_POS >= CUR_END && CUR <= NFILE) od_next_file()
		if (CUR > NFILE) { OD_POS++; continue }
		v = $i; off = OD_POS - FILE_AT[CUR]; OD_POS++
		if (CUR_UTMP) UT[off + 1] = v + 0
		else if (off < 4096) {
			if (v == "0") { ARGS[CUR, NARGS[CUR]] = ARG; NARGS[CUR]++; ARG = "" }
			else ARG = ARG BYTE[v]
		}
	}
}
function od_next_file() {
	if (CUR && !CUR_UTMP) ARGS[CUR, NARGS[CUR]] = ARG
	CUR++; ARG = ""
	if (CUR > NFILE) return
	CUR_END = FILE_AT[CUR] + FILE_LEN[CUR]
	CUR_UTMP = FILE_NAME[CUR] == ENVIRON["OSMON_UTMP"]
	if (CUR_UTMP) UT_FILE = CUR
	else { NARGS[CUR] = 1; FILE_OF[FILE_NAME[CUR]] = CUR }
}
function od_end() {
	if (!NWC) return
	od_init()
	while (CUR <= NFILE) od_next_file()
	CMDLINES_OK = (OD_POS == WC_TOTAL)
	UT_OK = UT_FILE && OD_POS >= FILE_AT[UT_FILE] + FILE_LEN[UT_FILE]
}
# Python str.strip(): ASCII whitespace, \x1c-\x1f and the Unicode spaces, on valid UTF-8.
function pystrip(s) {
	while (match(s, /^([\t\n\013\f\r\034-\037 ]|\302\205|\302\240|\341\232\200|\342\200[\200-\212]|\342\200\250|\342\200\251|\342\200\257|\342\201\237|\343\200\200)/)) s = substr(s, RLENGTH + 1)
	while (match(s, /([\t\n\013\f\r\034-\037 ]|\302\205|\302\240|\341\232\200|\342\200[\200-\212]|\342\200\250|\342\200\251|\342\200\257|\342\201\237|\343\200\200)$/)) s = substr(s, 1, RSTART - 1)
	return s
}
# Secrets in command lines are masked before they leave the host, word by word as probe.py
# mask_command_line does (the same rules, the same "[hidden]"): key=value and --key value for
# a key that names a secret, the password of scheme://user:pass@, Bearer and Basic tokens,
# mysql -pSECRET.  Indexes below are 0-based, as in probe.py, through sl() and at0().
function sl(s, a, b) { return substr(s, a + 1, b - a) }
function at0(s, t, from,    p) { p = index(substr(s, from + 1), t); return p ? p - 1 + from : -1 }
function secret_key(key,    w) {
	w = tolower(key); sub(/^-+/, "", w); gsub(/[-_]/, "", w)
	return w != "" && (w ~ /pass$/ || w ~ /password|passwd|passphrase|pwd|secret|token|apikey|accesskey|privatekey|credential|auth|sessionid|cookie/)
}
function mask_urls(arg,    out, start, found, begin, end, at, colon, n, i) {
	out = ""; start = 0; n = length(arg)
	while ((found = at0(arg, "://", start)) >= 0) {
		begin = found + 3
		for (end = begin; end < n && !index("/?# \"\047", substr(arg, end + 1, 1)); end++) ;
		at = -1
		for (i = end - 1; i >= begin; i--) if (substr(arg, i + 1, 1) == "@") { at = i; break }
		colon = at >= 0 ? at0(arg, ":", begin) : -1
		if (colon >= at) colon = -1
		if (colon >= 0 && colon + 1 < at) out = out sl(arg, start, colon + 1) "[hidden]@"
		else out = out (at >= 0 ? sl(arg, start, at + 1) : sl(arg, start, begin))
		start = at >= 0 ? at + 1 : begin
	}
	return out substr(arg, start + 1)
}
function mask_assignments(arg,    out, start, eq, key_start, end, n) {
	out = ""; start = 0; n = length(arg); eq = at0(arg, "=", 0)
	while (eq >= 0) {
		for (key_start = eq; key_start > 0 && substr(arg, key_start, 1) ~ /[A-Za-z0-9_.-]/; key_start--) ;
		for (end = eq + 1; end < n && !index("&; ,\047\"", substr(arg, end + 1, 1)); end++) ;
		if (end > eq + 1 && secret_key(sl(arg, key_start, eq))) { out = out sl(arg, start, eq + 1) "[hidden]"; start = end }
		eq = at0(arg, "=", end > eq + 1 ? end : eq + 1)
	}
	return out substr(arg, start + 1)
}
function mask_schemes(arg,    low, k, scheme, at, begin, end, n) {
	low = tolower(arg); n = length(arg)
	for (k = 1; k <= 2; k++) {
		scheme = k == 1 ? "bearer " : "basic "
		if ((at = at0(low, scheme, 0)) < 0) continue
		begin = at + length(scheme)
		for (end = begin; end < n && !index(" \047\"", substr(arg, end + 1, 1)); end++) ;
		if (end > begin) return substr(arg, 1, begin) "[hidden]" mask_schemes(substr(arg, end + 1))
	}
	return arg
}
# WORDS[1..n] masked in place.
function mask_words(n,    i, arg, low, hide, mysql, base) {
	base = WORDS[1]; sub(/.*\//, "", base)
	mysql = n > 0 && base ~ /^(mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb|mariadb-dump|mariadb-admin)$/
	hide = 0
	for (i = 1; i <= n; i++) {
		arg = WORDS[i]; low = tolower(arg)
		if (hide && substr(arg, 1, 1) != "-") {
			if (low != "bearer" && low != "basic") { WORDS[i] = "[hidden]"; hide = 0 }
			continue
		}
		hide = (substr(arg, 1, 1) == "-" && !index(arg, "=") && secret_key(arg)) || low == "bearer" || low == "basic" || low ~ /(authorization|auth):$/
		if (mysql && substr(arg, 1, 2) == "-p" && length(arg) > 2 && substr(arg, 1, 2) != "--") { WORDS[i] = "-p[hidden]"; continue }
		if (index(arg, "://")) arg = mask_urls(arg)
		if (index(arg, "=")) arg = mask_assignments(arg)
		if (index(low, "bearer ") || index(low, "basic ")) arg = mask_schemes(arg)
		WORDS[i] = arg
	}
}
# A top process: its full name (comm is cut at 15 bytes; argv[0] has it all, as psutil
# takes it) and its command line: arguments joined by spaces, stripped, secrets masked, 200
# characters, as probe.py _process_entry.
function proc_entry(pid,    name, f, n, i, cmd, base, comm) {
	comm = u8(TCOMM[pid], 0)
	name = comm; cmd = ""
	if (CMDLINES_OK && ((pid "/cmdline") in FILE_OF)) {
		f = FILE_OF[pid "/cmdline"]; n = NARGS[f]
		while (n > 1 && ARGS[f, n] == "") n--
		for (i = 1; i <= n; i++) WORDS[i] = u8(ARGS[f, i], 0)
		if (chars(comm) >= 15 && n) {
			base = WORDS[1]
			sub(/.*\//, "", base)
			sub(/ .*/, "", base)
			if (substr(base, 1, length(comm)) == comm) name = base
		}
		mask_words(n)
		cmd = WORDS[1]
		for (i = 2; i <= n; i++) cmd = cmd " " WORDS[i]
		cmd = cutchars(pystrip(cmd), 200)
	}
	return "{\"pid\":" pid ",\"user\":" TUSER[pid] ",\"name\":" jstr(name) ",\"cmdline\":" jstr(cmd) \
		",\"cpu_percent\":" TCPU[pid] ",\"mem_percent\":" TMEM[pid] ",\"rss\":" TRSS[pid] "}"
}
function processes(   i, c, m, done) {
	c = ""; m = ""
	for (i = 1; i <= NTC; i++) { if (!(TOPC[i] in done)) done[TOPC[i]] = proc_entry(TOPC[i]); c = c (i > 1 ? "," : "") done[TOPC[i]] }
	for (i = 1; i <= NTM; i++) { if (!(TOPM[i] in done)) done[TOPM[i]] = proc_entry(TOPM[i]); m = m (i > 1 ? "," : "") done[TOPM[i]] }
	return "{\"count\":" PCOUNT ",\"scanned\":" PSCAN ",\"cpu_basis\":\"" PBASIS "\",\"top_cpu\":[" c "],\"top_mem\":[" m "]" \
		(COUNTERS != "" ? ",\"counters\":" COUNTERS : "") "}"
}
'

# utmp: the USER_PROCESS records, in glibc's struct layout (384 bytes, or 400 where 64-bit
# glibc has 64-bit times), chosen as probe.py does: the likeliest for the architecture whose
# size divides the file and whose record types are all valid; entries whose session process
# is gone are skipped, as `who` does.
OSMON_ASM_USERS='
END {
	if (ENVIRON["OSMON_UTMP_STATE"] == "read") OUT = OUT users()
}
function le(pos, size,    v, i, mul) {
	v = 0; mul = 1
	if (BIGEND) for (i = pos + size - 1; i >= pos; i--) { v += UT[i] * mul; mul *= 256 }
	else for (i = pos; i < pos + size; i++) { v += UT[i] * mul; mul *= 256 }
	if (UT[BIGEND ? pos : pos + size - 1] >= 128) v -= mul
	return v
}
function cstr(pos, size,    i, out) {
	out = ""
	for (i = pos; i < pos + size && UT[i]; i++) out = out BYTE[UT[i] ""]
	return u8(out, 0)
}
function iso_utc(t,    days, secs, z, era, doe, yoe, y, doy, mp, d, m) {
	days = int(t / 86400); secs = t - days * 86400
	if (secs < 0) { secs += 86400; days-- }
	z = days + 719468; era = int((z >= 0 ? z : z - 146096) / 146097)
	doe = z - era * 146097; yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
	y = yoe + era * 400; doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100)); mp = int((5 * doy + 2) / 153)
	d = doy - int((153 * mp + 2) / 5) + 1; m = mp < 10 ? mp + 3 : mp - 9
	if (m <= 2) y++
	return sprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, int(secs / 3600), int(secs % 3600 / 60), secs % 60)
}
function users(   size, sizes, s, base, n, off, ok, type, pid, out, cnt, user, alive, x, tsec, stat) {
	if (!UT_OK) { EJSON[++NE] = "\"users\":" jstr(oserr(ENVIRON["OSMON_UTMP"])); return "" }
	base = 1; n = FILE_LEN[UT_FILE] > 4194304 ? 4194304 : FILE_LEN[UT_FILE]
	BIGEND = ENVIRON["OSMON_ARCH"] ~ /^(mips|mips64|ppc|ppc64|powerpc|s390|s390x|sparc|sparc64|m68k|or1k|hppa|parisc)$|(eb|_be)$/
	if (ENVIRON["OSMON_ARCH"] ~ /^(aarch64|arm64|riscv64|loongarch64)/) { sizes[1] = 400; sizes[2] = 384 } else { sizes[1] = 384; sizes[2] = 400 }
	size = sizes[1]
	for (s = 1; s <= 2; s++) {
		if (n % sizes[s]) continue
		ok = 1
		for (off = 0; off < n && ok; off += sizes[s]) { type = le(base + off, 2); ok = type >= 0 && type <= 9 }
		if (ok) { size = sizes[s]; break }
	}
	out = ""; cnt = 0
	for (off = 0; off + size <= n; off += size) {
		type = le(base + off, 2); pid = le(base + off + 4, 4); user = cstr(base + off + 44, 32)
		if (type != 7 || user == "") continue
		if (ENVIRON["OSMON_P_utmp_check_pids"] != "false") {
			stat = ENVIRON["OSMON_PROC"] "/" pid "/stat"
			if (pid <= 0) continue
			alive = (getline x < stat) >= 0; close(stat)
			if (!alive) continue
		}
		tsec = size == 384 ? le(base + off + 340, 4) : le(base + off + 344, 8)
		x = cstr(base + off + 76, 256)
		if (++cnt > 1024) continue
		out = out (cnt > 1 ? "," : "") "{\"name\":" jstr(user) ",\"tty\":" jstr(cstr(base + off + 8, 32)) \
			",\"from\":" (x == "" ? "null" : jstr(x)) ",\"since\":\"" iso_utc(tsec) "\"}"
	}
	if (cnt > 1024) EJSON[++NE] = "\"users:truncated\":\"truncated to 1024 of " cnt " sessions\""
	return ",\"users\":[" out "]"
}
'

# Answers of the checks the shell ran: <k>.res holds "<start> <end> <exit status> <how>
# <timeout ms> <argv[0]>" (times from /proc/uptime), <k>.out and <k>.err the output,
# <k>.timeout exists when the watchdog killed it.  Messages are probe.py run_check's.
OSMON_ASM_CHECKS='
END { OUT = OUT ",\"checks\":{" checks() "}" }
function budget_s() { return sprintf("%g", ENVIRON["OSMON_BUDGET_MS"] / 1000) }
function no_answer(why) { return "\"exit\":null,\"output\":\"\",\"duration_s\":0.0,\"error\":" jstr(why) }
function checks(   i, k, p, res, f, out, errtext, cap, code, how, s, ans, names, nt, sizes, order, j, tmp, remaining, share, field, keys) {
	nt = 0
	for (i = 1; i <= NCHK; i++) {
		k = CKN[i]
		if (CKTO[k] == "bad") { ANS[k] = no_answer("the command is not a non-empty list of non-empty strings"); continue }
		if (ENVIRON["OSMON_TMP"] == "") { ANS[k] = no_answer("not run: " ENVIRON["OSMON_TMP_ERROR"]); continue }
		res = slurp(ENVIRON["OSMON_TMP"] "/" k ".res")
		sub(/\n$/, "", res)
		for (j = 1; j <= 5; j++) { if (!(p = index(res, " "))) break; f[j] = substr(res, 1, p - 1); res = substr(res, p + 1) }
		if (j <= 5) { ANS[k] = "\"exit\":null,\"output\":\"\",\"duration_s\":null,\"error\":\"still running when the probe had to answer\""; continue }
		how = f[4]; code = f[3] + 0
		if (how == "notrun") { ANS[k] = no_answer("not run: the " budget_s() " s the probe gives all checks were used up by slower ones"); continue }
		if (how == "notfound") { ANS[k] = no_answer(substr("command not found: " cutchars(u8(res, 0), 200), 1, 300)); continue }
		if (how == "noexec") { ANS[k] = no_answer(substr("command not executable (permission denied): " cutchars(u8(res, 0), 200), 1, 300)); continue }
		cap = CKCAP[k] + 0
		out = slurp(ENVIRON["OSMON_TMP"] "/" k ".out"); errtext = slurp(ENVIRON["OSMON_TMP"] "/" k ".err")
		s = length(out) + length(errtext)
		if (length(out) > cap) out = substr(out, 1, cap)
		if (length(out) + length(errtext) > cap) errtext = substr(errtext, 1, cap - length(out))
		TEXT[k, "output"] = u8(out, 0); TEXT[k, "stderr"] = cutchars(u8(errtext, 0), 2048)
		ERRT[k] = ""
		if (how == "timeout") ERRT[k] = "timed out after " sprintf("%g", sprintf("%.1f", f[5] / 1000) + 0) " s, killed" \
			(f[5] + 0 < CKTO[k] + 0 ? " (cut short: the " budget_s() " s the probe gives all checks ran out)" : "")
		else if (s > cap) ERRT[k] = "more than " cap " bytes of output, killed (raise max_output if that much is expected)"
		else if (code > 128 && code < 193) ERRT[k] = "killed by " signame(code - 128)
		CODE[k] = (ERRT[k] == "") ? code : "null"
		DUR[k] = jn(sprintf("%.3f", f[2] - f[1]) + 0)
		for (j = 1; j <= 2; j++) {
			field = j == 1 ? "output" : "stderr"
			if (TEXT[k, field] != "") { sizes[++nt] = length(u8(TEXT[k, field], 1)); names[nt] = k SUBSEP field }
		}
	}
	# all texts together at most 1 MiB escaped: the smallest kept whole, the rest shared evenly
	for (i = 1; i <= nt; i++) order[i] = i
	for (i = 2; i <= nt; i++) for (j = i; j > 1 && sizes[order[j]] < sizes[order[j - 1]]; j--) { tmp = order[j]; order[j] = order[j - 1]; order[j - 1] = tmp }
	remaining = 1048576
	for (i = 1; i <= nt; i++) {
		share = int(remaining / (nt - i + 1))
		if (sizes[order[i]] > share) {
			split(names[order[i]], keys, SUBSEP)
			TEXT[keys[1], keys[2]] = clip_escaped(TEXT[keys[1], keys[2]], share); TRUNC[keys[1]] = 1
			sizes[order[i]] = length(u8(TEXT[keys[1], keys[2]], 1))
		}
		remaining -= sizes[order[i]]
	}
	out = ""
	for (i = 1; i <= NCHK; i++) {
		k = CKN[i]
		if (k in ANS) ans = ANS[k]
		else {
			ans = "\"exit\":" CODE[k] ",\"output\":" jstr(TEXT[k, "output"]) ",\"duration_s\":" DUR[k]
			if (TEXT[k, "stderr"] != "") ans = ans ",\"stderr\":" jstr(TEXT[k, "stderr"])
			if (ERRT[k] != "") ans = ans ",\"error\":" jstr(substr(ERRT[k], 1, 300))
			if (k in TRUNC) ans = ans ",\"truncated\":true"
		}
		out = out (i > 1 ? "," : "") CKNAME[k] ":{" ans "}"
	}
	return out
}
# The longest prefix of s whose JSON escape has at most limit bytes.
function clip_escaped(s, limit,    lo, hi, mid) {
	lo = 0; hi = length(s) < limit ? length(s) : limit
	while (lo < hi) {
		mid = int((lo + hi + 1) / 2)
		if (length(u8(cutbytes(s, mid), 1)) <= limit) lo = mid; else hi = mid - 1
	}
	return cutbytes(s, lo)
}
# The first n bytes of valid UTF-8, never splitting a character.
function cutbytes(s, n,    c) {
	if (n >= length(s)) return s
	ord_init()
	while (n > 0 && (c = ORD[substr(s, n + 1, 1)]) >= 128 && c < 192) n--
	return substr(s, 1, n)
}
function signame(n,    names) {
	split("SIGHUP SIGINT SIGQUIT SIGILL SIGTRAP SIGABRT SIGBUS SIGFPE SIGKILL SIGUSR1 SIGSEGV SIGUSR2 SIGPIPE SIGALRM SIGTERM SIGSTKFLT SIGCHLD SIGCONT SIGSTOP SIGTSTP SIGTTIN SIGTTOU SIGURG SIGXCPU SIGXFSZ SIGVTALRM SIGPROF SIGWINCH SIGIO SIGPWR SIGSYS", names, " ")
	return (n in names) ? names[n] : "signal " n
}
'

# The errors, the timing asked for by self_timing, and the closing brace.  The timing's CPU
# is this shell's and every process it has reaped, plus this awk's own (the last wc/od of the
# pipeline are not counted); bench/bench_probe.py measures the whole run from outside.
OSMON_ASM_END='
END {
	if (ENVIRON["OSMON_P_self_timing"] == "true") OUT = OUT timing()
	OUT = OUT ",\"errors\":{"
	for (i = 1; i <= NE; i++) OUT = OUT (i > 1 ? "," : "") EJSON[i]
	printf "%s}}\n", OUT
}
function timing(   f, n, cpu, text) {
	cpu = 0
	text = slurp("/proc/" ENVIRON["OSMON_SHELL_PID"] "/stat")
	if (match(text, /[)][^)]*$/) && split(substr(text, RSTART + 2), f, " ") > 15) cpu = (f[12] + f[13] + f[14] + f[15]) / 100
	text = slurp("/proc/self/stat")
	if (match(text, /[)][^)]*$/) && split(substr(text, RSTART + 2), f, " ") > 15) cpu += (f[12] + f[13]) / 100
	return ",\"timing\":{\"cpu_s\":" jn(cpu) ",\"wall_s\":" jn(sprintf("%.2f", uptime_now() - ENVIRON["OSMON_T0"]) + 0) "}"
}
'

# --------------------------------------------------------------------------- the shell part

# Parameters: "key value" lines.  The scalar ones become OSMON_P_<key> for the awk programs
# (which check and clamp them); the shell itself uses only the paths.
osmon_read_params() {
	while IFS= read -r _line; do
		_key=${_line%% *}
		_value=${_line#* }
		[ "$_key" = "$_line" ] && _value=
		case $_key in
		cpu_sample_s|network_fs|statvfs_timeout_s|top_n|include_loopback|max_processes|\
		max_scan_s|proc_root|sys_root|etc_root|utmp_path|utmp_check_pids|self_timing|\
		clk_tck|page_size|checks_budget_s|command_lines|checks)
			export "OSMON_P_$_key=$_value" ;;
		esac
	done
}

# $1 = milliseconds -> seconds with a fraction, for sleep (whole seconds when it has none).
osmon_secs() {
	_s=$(( $1 / 1000 )) _f=$(( $1 % 1000 ))
	if [ -n "$OSMON_FRACTION_SLEEP" ]; then
		case ${#_f} in 1) _f=00$_f ;; 2) _f=0$_f ;; esac
		OSMON_SECS=$_s.$_f
	else
		[ "$_f" -gt 0 ] && _s=$(( _s + 1 ))
		OSMON_SECS=$_s
	fi
}

# Hundredths of a second since boot, from /proc/uptime, without a fork.
osmon_now_cs() {
	{ read -r _up _ </proc/uptime; } 2>/dev/null || _up=0.00
	_cs=${_up%.*}${_up#*.}
	OSMON_NOW_CS=$(( ${_cs#"${_cs%%[!0]*}"} + 0 ))
}

# osmon_bounded DIR KEY TIMEOUT_MS CAP COMMAND [ARG...]: run the command in its own session,
# stdin /dev/null, stdout and stderr into DIR/KEY.out and .err (each limited by ulimit -f to
# about CAP bytes), kill its process group at the timeout (then DIR/KEY.timeout exists) and
# after it exits (children it left behind).  Sets OSMON_RC to its exit status.
osmon_bounded() {
	_dir=$1 _k=$2 _ms=$3 _cap=$4
	shift 4
	(
		ulimit -f $(( _cap / 512 + 2 )) 2>/dev/null
		exec $OSMON_SETSID "$@"
	) </dev/null >"$_dir/$_k.out" 2>"$_dir/$_k.err" &
	_pid=$!
	osmon_secs "$_ms"
	# The watchdog has a session of its own too: whatever kills the probe's process group
	# (the host-side limit of the remote command) leaves it to kill the command on time.
	$OSMON_SETSID sh -c '
		trap "kill \$s 2>/dev/null; exit 0" TERM
		sleep "$1" &
		s=$!
		wait "$s" || exit 0
		: >"$2"
		kill -9 "-$3" 2>/dev/null || kill -9 "$3" 2>/dev/null' osmon-watchdog \
		"$OSMON_SECS" "$_dir/$_k.timeout" "$_pid" </dev/null >/dev/null 2>&1 &
	_watchdog=$!
	wait "$_pid"
	OSMON_RC=$?
	kill "$_watchdog" 2>/dev/null
	wait "$_watchdog" 2>/dev/null
	[ -n "$OSMON_SETSID" ] && kill -9 "-$_pid" 2>/dev/null
	return 0
}

# Where a command would be found, as execvp looks: 0 found, 1 not found, 2 not executable.
osmon_lookup() {
	case $1 in
	*/*)
		[ -e "$1" ] || return 1
		[ -f "$1" ] && [ -x "$1" ] && return 0
		return 2 ;;
	esac
	_found=1
	_ifs=$IFS
	IFS=:
	set -f
	for _d in ${PATH:-/usr/bin:/bin}; do
		[ -e "${_d:-.}/$1" ] || continue
		if [ -f "${_d:-.}/$1" ] && [ -x "${_d:-.}/$1" ]; then _found=0; break; fi
		_found=2
	done
	set +f
	IFS=$_ifs
	return $_found
}

# One check (run in the background): its arguments from the A/B lines of OSMON_CHECKS,
# "$@"-style, then osmon_bounded.  B lines hold an argument with a line break, \0ooo-escaped.
osmon_check_one() {
	_k=$1 _ms=$2 _cap=$3
	osmon_now_cs
	_t0=$OSMON_NOW_CS
	set --
	while IFS= read -r _line; do
		case $_line in
		"A	$_k	"*) set -- "$@" "${_line#A	$_k	}" ;;
		"B	$_k	"*)
			_arg=$(printf '%bx' "${_line#B	$_k	}")
			set -- "$@" "${_arg%x}" ;;
		esac
	done <<EOF
$OSMON_CHECKS
EOF
	_how=ok
	_rc=0
	osmon_lookup "$1"
	case $? in
	1) _how=notfound ;;
	2) _how=noexec ;;
	*)
		osmon_bounded "$OSMON_TMP" "$_k" "$_ms" "$_cap" "$@"
		_rc=$OSMON_RC
		[ -e "$OSMON_TMP/$_k.timeout" ] && _how=timeout ;;
	esac
	osmon_now_cs
	_t1=$OSMON_NOW_CS
	# start and end in seconds (x.yy), status, how, the timeout used, argv[0] for messages
	printf '%s %s %s %s %s %s\n' "$(( _t0 / 100 )).$(( _t0 % 100 / 10 ))$(( _t0 % 10 ))" \
		"$(( _t1 / 100 )).$(( _t1 % 100 / 10 ))$(( _t1 % 10 ))" "$_rc" "$_how" "$_ms" "$1" \
		>"$OSMON_TMP/$_k.res"
}

# Run the checks of the K lines, 8 side by side, all within the checks budget.
osmon_run_checks() {
	osmon_tmp_setup || return 0
	osmon_now_cs
	_deadline=$(( OSMON_NOW_CS + OSMON_BUDGET_MS / 10 ))
	_running=
	_n=0
	while IFS='	' read -r _tag _k _ms _cap; do
		[ "$_tag" = K ] || continue
		[ "$_ms" -gt 0 ] || continue
		if [ "$_n" -ge 8 ]; then
			for _p in $_running; do wait "$_p"; done
			_running=
			_n=0
		fi
		osmon_now_cs
		_left=$(( (_deadline - OSMON_NOW_CS) * 10 ))
		[ "$_left" -lt "$_ms" ] && _ms=$_left
		if [ "$_ms" -lt 100 ]; then
			printf '0 0 0 notrun 0 -\n' >"$OSMON_TMP/$_k.res"
			continue
		fi
		osmon_check_one "$_k" "$_ms" "$_cap" &
		_running="$_running $!"
		_n=$(( _n + 1 ))
	done <<EOF
$OSMON_CHECK_SPECS
EOF
	for _p in $_running; do wait "$_p"; done
}

# df -P -k for the mounts in "$@", whose indexes are the words of OSMON_DF_INDEXES: all in one
# run ("%%df") when its answer has one line per mount, in order, each ending with its mount;
# else (a mount that failed or has a line break in its name, a bind mount df names otherwise)
# one run per mount ("%%df1"), whose error message then says which mount failed.
osmon_df() {
	[ $# -gt 0 ] || return 0
	_out=$(df -P -k -- "$@" 2>/dev/null)
	_whole=1
	for _m in "$@"; do
		IFS= read -r _line || { _whole=; break; }
		case $_line in Filesystem*) IFS= read -r _line || { _whole=; break; } ;; esac
		case $_line in *" $_m") ;; *) _whole=; break ;; esac
	done <<EOF
$_out
EOF
	if [ -n "$_whole" ]; then
		printf '%%%%dfidx\t%s\n%%%%df\n%s\n' "$OSMON_DF_INDEXES" "$_out"
		return 0
	fi
	_idxs="$OSMON_DF_INDEXES "
	for _m in "$@"; do
		printf '%%%%df1\t%s\n' "${_idxs%% *}"
		_idxs=${_idxs#* }
		df -P -k -- "$_m" 2>&1
	done
}

# Mounts that may hang (network file systems when network_fs is set, fuseblk), each measured
# in the background within statvfs_timeout_s; ASSEMBLE reads the answers from OSMON_TMP.
osmon_df_timed() {
	while IFS='	' read -r _idx _kind _path; do
		[ -n "$_idx" ] || continue
		case $_kind in
		E) _path=$(printf '%bx' "$_path"); _path=${_path%x} ;;
		esac
		osmon_bounded "$OSMON_TMP" "df$_idx" "$OSMON_STATVFS_MS" 65536 df -P -k -- "$_path" &
		_running="$_running $!"
	done <<EOF
$OSMON_TIMED
EOF
	for _p in $_running; do wait "$_p"; done
}

# The temporary directory of check outputs and timed df answers, and the tools they need.
osmon_tmp_setup() {
	[ -n "$OSMON_TMP" ] && return 0
	OSMON_TMP=$(mktemp -d "${TMPDIR:-/tmp}/osmon-probe.XXXXXX" 2>/dev/null) || {
		OSMON_TMP=
		OSMON_TMP_ERROR="OSError: cannot create a temporary directory in ${TMPDIR:-/tmp}"
		return 1
	}
	OSMON_SETSID=
	command -v setsid >/dev/null 2>&1 && OSMON_SETSID=setsid
	OSMON_FRACTION_SLEEP=
	sleep 0.001 2>/dev/null && OSMON_FRACTION_SLEEP=1
	return 0
}

osmon_main() {
	LC_ALL=C
	export LC_ALL
	nl='
'
	# 69 (EX_UNAVAILABLE), not 127: that one means "no such interpreter" to the collector
	command -v awk >/dev/null 2>&1 || { echo "osmon probe.sh: awk not found on this host" >&2; exit 69; }
	osmon_params osmon_read_params
	OSMON_PROC=${OSMON_P_proc_root:-/proc}
	OSMON_SYS=${OSMON_P_sys_root:-/sys}
	OSMON_UTMP=${OSMON_P_utmp_path:-/var/run/utmp}
	OSMON_SHELL_PID=$$
	osmon_now_cs
	OSMON_T0=$(( OSMON_NOW_CS / 100 )).$(( OSMON_NOW_CS % 100 / 10 ))$(( OSMON_NOW_CS % 10 ))
	{ read -r OSMON_ARCH <"/proc/sys/kernel/arch"; } 2>/dev/null || OSMON_ARCH=$(uname -m 2>/dev/null)
	OSMON_BLOCK=-
	if [ -d "$OSMON_SYS/block" ]; then
		OSMON_BLOCK=' '
		for _d in "$OSMON_SYS"/block/*; do
			[ -e "$_d" ] && OSMON_BLOCK="$OSMON_BLOCK${_d##*/} "
		done
	fi
	export OSMON_PROC OSMON_ARCH OSMON_BLOCK OSMON_SHELL_PID OSMON_T0

	# SCAN prints the finished sections on stdout (they go out at once: the collector dates
	# the reading by its first byte) and the lines for this shell and ASSEMBLE on stderr.
	exec 3>&1
	_scan=$(
		OSMON_PIDS=unlisted
		if cd "$OSMON_PROC" 2>/dev/null; then OSMON_PIDS=listed; set -- [0-9]*; else set --; fi
		export OSMON_PIDS
		osmon_input awk "$OSMON_LIB$OSMON_SCAN${OSMON_P_checks:+$OSMON_SCAN_CHECKS}$OSMON_SCAN_END" \
			"$@" 2>&1 1>&3 3>&-
	)
	_status=$?
	exec 3>&-
	case $_scan in
	*"%%data$nl"*) ;;
	*)
		echo "osmon probe.sh: awk failed (status $_status) while reading $OSMON_PROC: $_scan" >&2
		exit 1 ;;
	esac
	_ctl=${_scan%%"%%data$nl"*}
	_data=${_scan#*"%%data$nl"}

	# What the shell must do: measure the mounts (M), read command lines (P), run checks (K).
	set --
	OSMON_DF_INDEXES=
	OSMON_TIMED=
	OSMON_CHECKS=
	OSMON_CHECK_SPECS=
	OSMON_BUDGET_MS=25000
	OSMON_STATVFS_MS=2000
	_pids=
	while IFS= read -r _line; do
		case $_line in
		"M	"*)
			_rest=${_line#M	}
			_idx=${_rest%%	*}
			_rest=${_rest#*	}
			if [ "${_rest%%	*}" = 1 ]; then
				OSMON_TIMED="$OSMON_TIMED$_idx	${_rest#*	}$nl"
				continue
			fi
			_rest=${_rest#*	}
			case $_rest in
			"P	"*) _m=${_rest#P	} ;;
			*) _m=$(printf '%bx' "${_rest#E	}"); _m=${_m%x} ;;
			esac
			OSMON_DF_INDEXES="$OSMON_DF_INDEXES $_idx"
			set -- "$@" "$_m" ;;
		"P	"*) _pids="$_pids ${_line#P	}" ;;
		"K	"*) OSMON_CHECK_SPECS="$OSMON_CHECK_SPECS$_line$nl" ;;
		"A	"*|"B	"*) OSMON_CHECKS="$OSMON_CHECKS$_line$nl" ;;
		"V	checks_budget_ms	"*) OSMON_BUDGET_MS=${_line##*	} ;;
		"V	statvfs_timeout_ms	"*) OSMON_STATVFS_MS=${_line##*	} ;;
		esac
	done <<EOF
$_ctl
EOF
	OSMON_DF_INDEXES=${OSMON_DF_INDEXES# }
	OSMON_TMP=
	OSMON_TMP_ERROR=
	if [ -n "$OSMON_TIMED" ] && osmon_tmp_setup; then
		_running=
		osmon_df_timed
	fi
	[ -n "$OSMON_CHECK_SPECS" ] && osmon_run_checks

	OSMON_UTMP_STATE=missing
	if [ -e "$OSMON_UTMP" ]; then
		if [ -r "$OSMON_UTMP" ]; then OSMON_UTMP_STATE=read; else OSMON_UTMP_STATE=noread; fi
		command -v od >/dev/null 2>&1 || OSMON_UTMP_STATE=nood
	fi
	_utmp=
	[ "$OSMON_UTMP_STATE" = read ] && _utmp=1
	export OSMON_TMP OSMON_TMP_ERROR OSMON_BUDGET_MS OSMON_STATVFS_MS OSMON_UTMP OSMON_UTMP_STATE
	{
		printf '%s\n' "$_data"
		osmon_df "$@"
		while IFS='	' read -r _idx _; do
			[ -n "$_idx" ] && printf '%%%%dft\t%s\n' "$_idx"
		done <<EOF
$OSMON_TIMED
EOF
		# utmp first: its bytes stay usable even when a command line changes meanwhile
		set --
		[ "$OSMON_UTMP_STATE" = read ] && set -- "$OSMON_UTMP"
		for _p in $_pids; do set -- "$@" "$_p/cmdline"; done
		if [ $# -gt 0 ] && command -v od >/dev/null 2>&1 && cd "$OSMON_PROC" 2>/dev/null; then
			printf '%%%%wc\n'
			wc -c -- "$@" 2>/dev/null
			printf '%%%%od\n'
			od -An -v -tu1 -- "$@" 2>/dev/null
		fi
		printf '%%%%end\n'
	} | awk "$OSMON_LIB$OSMON_ASSEMBLE${_utmp:+$OSMON_ASM_USERS}${OSMON_CHECK_SPECS:+$OSMON_ASM_CHECKS}$OSMON_ASM_END"
	[ -n "$OSMON_TMP" ] && rm -rf "$OSMON_TMP"
	return 0
}

# Standalone (not piped by the collector): no parameters, no input.
command -v osmon_params >/dev/null 2>&1 || osmon_params() { "$@" </dev/null; }
command -v osmon_input >/dev/null 2>&1 || osmon_input() { "$@" </dev/null; }
osmon_main
