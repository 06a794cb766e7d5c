# The pid-reuse reproduction of tests/pidfd.rs. Runs as PID 1 of a private PID namespace:
# starts reaper (a subreaper, not PID 1) over a leftover L that reaps its own child G, slows
# reaper's signal syscalls with strace, and while reaper is stopped in the syscall that
# signals L, ends G (L reaps it) and hands G's pid to an outsider O (via ns_last_pid), a
# child of this script, outside reaper's tree. Prints what happened as key=value lines.
#   reuse.py REAPER drain|kill-after DELAY_US [extra strace args...]
import os, signal, subprocess, sys, time
reaper, path, delay, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

def olog(n, f):
    with open("O.log", "a") as f:
        f.write("%d\n" % n)
signal.signal(signal.SIGTERM, olog)  # inherited by O, the only process that can get it

def wait_for(cond, what, timeout=30.0):
    end = time.time() + timeout
    while not cond():
        if time.time() > end:
            sys.exit("timed out waiting for " + what)
        time.sleep(0.002)

L_SRC = r'''
import os, signal
os.setsid()
log = open("L.log", "a", buffering=1)
signal.signal(signal.SIGTERM, lambda n, f: log.write("%d\n" % n))
g = os.fork()
if g == 0:
    os.execvp("sleep", ["sleep", "1000"])
open("G.tmp", "w").write(str(g))
os.rename("G.tmp", "G.pid")
os.waitpid(g, 0)
open("G.reaped", "w").close()
while True:
    signal.pause()
'''
open("L.py", "w").write(L_SRC)
args = [reaper, "--drain", "3s"]
if path == "kill-after":
    args += ["--kill-after", "1s"]
main = "trap '' TERM; python3 L.py & wait"
env = dict(os.environ, REAPER_LOG="debug")
r = subprocess.Popen(args + ["--", "sh", "-c", main], env=env, stderr=open("reaper.stderr", "w"))
wait_for(lambda: os.path.exists("G.pid"), "L to start G")
G = int(open("G.pid").read())
L = int(open("/proc/%d/stat" % G).read().rsplit(")", 1)[1].split()[1])
sh = [int(p) for p in open("/proc/%d/task/%d/children" % (r.pid, r.pid)).read().split()][0]
st = subprocess.Popen(["strace", "-p", str(r.pid), "-e", "trace=kill,pidfd_open,pidfd_send_signal",
                       "-e", "inject=kill,pidfd_send_signal:delay_enter=" + delay, *extra,
                       "-o", "strace.log"], stderr=subprocess.PIPE, text=True)
st.stderr.readline()  # "strace: Process N attached"
if path == "kill-after":
    os.kill(r.pid, signal.SIGTERM)
else:
    os.kill(sh, signal.SIGKILL)

def signalling_L():
    try:
        nr, a0 = open("/proc/%d/syscall" % r.pid).read().split()[:2]
        if int(nr) == 62:
            return int(a0, 16) == L
        if int(nr) == 424:
            return ("Pid:\t%d\n" % L) in open("/proc/%d/fdinfo/%d" % (r.pid, int(a0, 16))).read()
    except (OSError, ValueError):
        pass
    return False
wait_for(signalling_L, "reaper to signal L")
os.kill(G, signal.SIGKILL)
wait_for(lambda: os.path.exists("G.reaped"), "L to reap G")
with open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(str(G - 1))
O = os.fork()
if O == 0:
    while True:
        signal.pause()
code = r.wait(timeout=60)
o_alive = os.waitpid(O, os.WNOHANG) == (0, 0)
os.kill(O, signal.SIGKILL)
os.waitpid(O, 0)
st.wait()
read = lambda p: open(p).read() if os.path.exists(p) else ""
for k, v in dict(G=G, L=L, O=O, reaper=code, o_alive=int(o_alive),
                o_log=read("O.log").split(), l_log=read("L.log").split()).items():
    print("%s=%s" % (k, ",".join(v) if isinstance(v, list) else v))
