#!/usr/bin/env python3
"""Generate tracer-user/src/syscalls/{x86_64,aarch64,i386}.rs from the kernel uapi headers.

Run: python3 xtask/scripts/gen_syscall_tables.py  (needs linux-libc-dev).
The tables are committed; this script is only for refreshing them.
"""
import re, sys, pathlib

OUT = pathlib.Path(__file__).resolve().parents[2] / "tracer-user/src/syscalls"

def simple(header):
    table = {}
    for m in re.finditer(r"#define __NR_(\w+)\s+(\d+)", pathlib.Path(header).read_text()):
        table[int(m.group(2))] = m.group(1)
    return table

def generic_64():
    """asm-generic/unistd.h as arm64 sees it (64-bit, with the __ARCH_WANT_* arm64 sets)."""
    text = pathlib.Path("/usr/include/asm-generic/unistd.h").read_text()
    want = {"__ARCH_WANT_RENAMEAT", "__ARCH_WANT_NEW_STAT", "__ARCH_WANT_SET_GET_RLIMIT",
            "__ARCH_WANT_SYS_CLONE3", "__ARCH_WANT_MEMFD_SECRET"}
    table, n3264, stack = {}, {}, []

    def defined(name):
        return name in want or name in ("__NR3264_stat", "__NR3264_fstatat")

    def term(t):
        """One operand of an #if: defined(X), !defined(X) or a __BITS_PER_LONG test (64-bit)."""
        t = t.strip().strip("()").strip()
        m = re.fullmatch(r"(!?)\s*defined\s*\(?\s*(\w+)\s*\)?", t)
        if m:
            return defined(m.group(2)) != (m.group(1) == "!")
        m = re.fullmatch(r"__BITS_PER_LONG\s*(==|!=)\s*(\d+)", t)
        if m:
            return (m.group(2) == "64") == (m.group(1) == "==")
        raise SystemExit(f"unknown #if operand: {t!r}")

    def expr(e):
        return any(all(term(t) for t in part.split("&&")) for part in e.split("||"))

    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#ifndef"):
            # Include guards and __ARCH_NOMMU / __SYSCALL fallbacks: taken on arm64.
            stack.append(True)
            continue
        if s.startswith("#ifdef"):
            stack.append(defined(s.split()[1]))
            continue
        if s.startswith("#if"):
            stack.append(expr(s[3:]))
            continue
        if s.startswith("#else"):
            if stack:
                stack[-1] = not stack[-1]
            continue
        if s.startswith("#endif"):
            if stack:
                stack.pop()
            continue
        if not all(stack):
            continue
        m = re.match(r"#define __NR3264_(\w+)\s+(\d+)", s)
        if m:
            n3264[m.group(1)] = int(m.group(2))
            continue
        m = re.match(r"#define __NR_(\w+)\s+(\d+)", s)
        if m and m.group(1) != "syscalls":
            table[int(m.group(2))] = m.group(1)
            continue
        m = re.match(r"#define __NR_(\w+)\s+__NR3264_(\w+)", s)
        if m and m.group(2) in n3264:
            table[n3264[m.group(2)]] = m.group(1)
    return table

# Calls added after the headers Debian ships (6.1); since 5.x every architecture uses the same
# numbers for new calls, so one list serves all three tables.
NEWER = {451: "cachestat", 452: "fchmodat2", 453: "map_shadow_stack", 454: "futex_wake",
         455: "futex_wait", 456: "futex_requeue", 457: "statmount", 458: "listmount",
         459: "lsm_get_self_attr", 460: "lsm_set_self_attr", 461: "lsm_list_modules",
         462: "mseal", 463: "setxattrat", 464: "getxattrat", 465: "listxattrat",
         466: "removexattrat", 467: "open_tree_attr", 468: "file_getattr", 469: "file_setattr"}

def emit(name, table, source):
    for nr, n in NEWER.items():
        table.setdefault(nr, n)
    top = max(table) + 1
    body = "\n".join(f'    ({nr}, "{n}"),' for nr, n in sorted(table.items()))
    (OUT / f"{name}.rs").write_text(
        f"//! Syscall numbers of the {name} ABI, generated from `{source}`\n"
        f"//! by xtask/scripts/gen_syscall_tables.py. Do not edit by hand.\n\n"
        f"pub const TABLE: &[(u32, &str)] = &[\n{body}\n];\n")
    print(name, len(table), "max", top - 1)

emit("x86_64", simple("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"), "asm/unistd_64.h")
emit("i386", simple("/usr/include/x86_64-linux-gnu/asm/unistd_32.h"), "asm/unistd_32.h")
emit("aarch64", generic_64(), "asm-generic/unistd.h (arm64 view)")
