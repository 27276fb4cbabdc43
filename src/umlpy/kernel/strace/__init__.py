"""Guest syscall tracing: `strace` on the kernel command line prints every
guest syscall, delivered signal and exit as strace -f does (tracing.py).

`tracer` is the one name the kernel's hooks test (`if strace.tracer is not
None`): None unless a trace was asked for at boot (start.py), so that with
tracing off a syscall pays one global lookup and nothing is imported.  No
submodule may be named `tracer`: importing it would set that name on the
package.
"""
tracer = None
