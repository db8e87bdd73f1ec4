//! A small classic-BPF assembler and the seccomp program builder.
//!
//! Layout:
//!
//! ```text
//! ld arch;  jeq AUDIT_ARCH_X86_64 else KILL_PROCESS    (i386 `int 0x80` lands here)
//! ld nr;    jge 0x40000000 -> KILL_PROCESS              (x32 ABI)
//!           jgt NEWEST_KNOWN -> ERRNO(ENOSYS)           (future syscalls: let libc fall back)
//! binary search over number ranges (jge) -> shared `ret <action>` | argument block
//! argument blocks: ld args[i] (low/high word); and mask; jeq ... -> shared ret ALLOW/ERRNO
//! ```
//!
//! Every number reaches its verdict in at most ~12 instructions, whatever the table order.
//! Syscalls whose verdict does not depend on arguments never load an argument, so the
//! kernel's per-number action cache (Linux >= 5.11) serves them without running the filter.
//!
//! Install cost, measured on the project VM (`bench_apply_steps`): it grows with program
//! *length*, not with the path walked (350 unreachable instructions cost as much as a real
//! 355-instruction tree, ~+150 us; a 4-instruction filter costs ~+40 us). Hence the compact
//! layout, where leaves are jumps to shared `ret`s rather than instructions of their own.

use super::policy::{Check, Operand, Verdict};
use libc::sock_filter;

/// The longest program the child can install. It copies the program into a stack buffer of
/// this many instructions (8 bytes each) to patch its pid in without allocating.
pub(crate) const MAX_FILTER_LEN: usize = 512;

/// `AUDIT_ARCH_X86_64` (`EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`).
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Syscall numbers with this bit set are the x32 ABI.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// `struct seccomp_data` offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

// Classic BPF opcodes (`<linux/bpf_common.h>`).
/// `BPF_LD | BPF_W | BPF_ABS` (`0x00 | 0x00 | 0x20`).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGT_K: u16 = 0x05 | 0x20;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_RET_K: u16 = 0x06;

/// The seccomp return value for a verdict without arguments.
pub(crate) const fn ret_errno(errno: i32) -> u32 {
    // errno values are small positive numbers; the data field is 16 bits.
    libc::SECCOMP_RET_ERRNO | ((errno as u32) & libc::SECCOMP_RET_DATA)
}
/// `SECCOMP_RET_ALLOW`.
pub(crate) const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
/// `SECCOMP_RET_KILL_PROCESS`.
pub(crate) const RET_KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

/// Building a filter failed. These are bugs in the policy tables (the unit tests build the
/// real tables), reported as errors rather than panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The program is longer than the child's fixed buffer.
    #[error("the filter has {len} instructions, more than the {max} the spawn path can install")]
    TooLong {
        /// Instructions built.
        len: usize,
        /// The limit: 512 instructions, the child's stack buffer for the program.
        max: usize,
    },
    /// A conditional jump would need an offset above 255.
    #[error(
        "a conditional jump at instruction {at} spans {distance} instructions (BPF allows 255)"
    )]
    JumpTooFar {
        /// Index of the jump.
        at: usize,
        /// Its offset.
        distance: usize,
    },
    /// A jump targets an instruction before itself, or a label never placed.
    #[error("a jump at instruction {at} has no forward target")]
    BadTarget {
        /// Index of the jump.
        at: usize,
    },
    /// An argument check names an argument above 5.
    #[error("an argument check names argument {arg}; syscalls have 6")]
    BadArgument {
        /// The index used.
        arg: u8,
    },
    /// A program that compares with the guest's pid was to be sent to the guest, which
    /// installs it as it is: only the spawn path patches pids in.
    #[error(
        "the stage-2 filter compares with the guest's pid, which only the spawn path can patch in"
    )]
    NeedsPid,
}

/// A compiled program plus the instructions whose constant is the guest's own pid.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    /// The program, ready for `seccomp(SECCOMP_SET_MODE_FILTER)` once pids are patched.
    pub insns: Vec<sock_filter>,
    /// Indices of `jeq` instructions to set to the child's pid before installing.
    pub pid_slots: Vec<usize>,
}

impl Filter {
    /// The program as the bytes of a `struct sock_filter` array: per instruction `code` (u16),
    /// `jt` (u8), `jf` (u8), `k` (u32), little-endian, 8 bytes. This is how the stage-2 filter
    /// travels to the guest in `Hello` (the guest decodes it field by field).
    ///
    /// # Errors
    /// [`FilterError::NeedsPid`] if the program has pid slots: the guest would install them
    /// unpatched.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, FilterError> {
        if !self.pid_slots.is_empty() {
            return Err(FilterError::NeedsPid);
        }
        let mut out = Vec::with_capacity(self.insns.len() * 8);
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_le_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_le_bytes());
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

#[derive(Debug, Clone, Copy)]
enum Op {
    Stmt {
        code: u16,
        k: u32,
    },
    Cond {
        code: u16,
        k: u32,
        jt: Label,
        jf: Label,
        pid: bool,
    },
    Ja(Label),
}

/// Instructions with symbolic forward jumps, resolved by [`Asm::finish`].
#[derive(Debug, Default)]
struct Asm {
    ops: Vec<Op>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }
    fn place(&mut self, l: Label) {
        self.labels[l.0] = Some(self.ops.len());
    }
    fn load(&mut self, offset: u32) {
        self.ops.push(Op::Stmt {
            code: BPF_LD_W_ABS,
            k: offset,
        });
    }
    fn and(&mut self, mask: u32) {
        self.ops.push(Op::Stmt {
            code: BPF_ALU_AND_K,
            k: mask,
        });
    }
    fn ret(&mut self, action: u32) {
        self.ops.push(Op::Stmt {
            code: BPF_RET_K,
            k: action,
        });
    }
    fn cond(&mut self, code: u16, k: u32, jt: Label, jf: Label) {
        self.ops.push(Op::Cond {
            code,
            k,
            jt,
            jf,
            pid: false,
        });
    }
    fn cond_pid(&mut self, jt: Label, jf: Label) {
        self.ops.push(Op::Cond {
            code: BPF_JMP_JEQ_K,
            k: 0,
            jt,
            jf,
            pid: true,
        });
    }
    fn ja(&mut self, l: Label) {
        self.ops.push(Op::Ja(l));
    }

    fn finish(self) -> Result<Filter, FilterError> {
        let len = self.ops.len();
        if len > MAX_FILTER_LEN {
            return Err(FilterError::TooLong {
                len,
                max: MAX_FILTER_LEN,
            });
        }
        let target = |at: usize, l: Label| -> Result<usize, FilterError> {
            match self.labels.get(l.0).copied().flatten() {
                Some(pos) if pos > at && pos <= len => Ok(pos - at - 1),
                _ => Err(FilterError::BadTarget { at }),
            }
        };
        let short = |at: usize, l: Label| -> Result<u8, FilterError> {
            let distance = target(at, l)?;
            u8::try_from(distance).map_err(|_| FilterError::JumpTooFar { at, distance })
        };
        let mut insns = Vec::with_capacity(len);
        let mut pid_slots = Vec::new();
        for (at, op) in self.ops.iter().enumerate() {
            insns.push(match *op {
                Op::Stmt { code, k } => sock_filter {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                },
                Op::Cond {
                    code,
                    k,
                    jt,
                    jf,
                    pid,
                } => {
                    if pid {
                        pid_slots.push(at);
                    }
                    sock_filter {
                        code,
                        jt: short(at, jt)?,
                        jf: short(at, jf)?,
                        k,
                    }
                }
                Op::Ja(l) => {
                    let distance = target(at, l)?;
                    let k = u32::try_from(distance)
                        .map_err(|_| FilterError::JumpTooFar { at, distance })?;
                    sock_filter {
                        code: BPF_JMP_JA,
                        jt: 0,
                        jf: 0,
                        k,
                    }
                }
            });
        }
        Ok(Filter { insns, pid_slots })
    }
}

/// What one number range of the search tree ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Ret(u32),
    /// The argument block of this syscall number.
    Block(u32),
}

fn leaf(nr: u32, verdict: Verdict, denials: Denials) -> Leaf {
    match verdict {
        Verdict::Allow => Leaf::Ret(RET_ALLOW),
        Verdict::Errno(e) => Leaf::Ret(denials.ret(nr, e)),
        Verdict::Kill => Leaf::Ret(RET_KILL),
        Verdict::AllowIf { .. } => Leaf::Block(nr),
    }
}

/// How leaves are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Tree nodes and argument blocks jump straight to shared `ret` instructions at the
    /// end: the shortest program (install cost grows with program length). Needs every
    /// jump within 255 instructions.
    Compact,
    /// Every leaf is its own instruction right under its node: longer, but jumps stay short
    /// for any table size. The fallback when [`Layout::Compact`] does not fit.
    Inline,
}

/// How an errno verdict becomes a seccomp return value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Denials {
    /// `SECCOMP_RET_ERRNO | errno`: what users get.
    Errno,
    /// Audit mode (CI): `SECCOMP_RET_TRAP | errno`, so the guest's SIGSYS handler reports the
    /// syscall number and exits, except for the numbers `keep` names (denials a healthy guest
    /// hits on purpose), which keep their errno.
    AuditTrap {
        /// Numbers whose errno stays an errno.
        keep: fn(u32) -> bool,
    },
}

impl Denials {
    /// The return value for `nr` refused with `errno`.
    pub(crate) fn ret(self, nr: u32, errno: i32) -> u32 {
        match self {
            Denials::AuditTrap { keep } if !keep(nr) => {
                RET_TRAP | ((errno as u32) & libc::SECCOMP_RET_DATA)
            }
            _ => ret_errno(errno),
        }
    }
}

/// `SECCOMP_RET_TRAP`: the kernel sends the thread a `SIGSYS` carrying the syscall number.
pub(crate) const RET_TRAP: u32 = libc::SECCOMP_RET_TRAP;

/// Builds the x86_64 program for a table: `verdict(nr)` for every `nr <= newest`, `ENOSYS`
/// above, `KILL_PROCESS` for x32 and foreign architectures. Uses the compact layout when it
/// fits, else the inline one.
pub(crate) fn build(
    newest: u32,
    verdict: impl Fn(u32) -> Verdict + Copy,
) -> Result<Filter, FilterError> {
    build_denying(newest, verdict, Denials::Errno)
}

/// [`build`] with a choice of how refusals return (errno, or the audit mode's trap).
pub(crate) fn build_denying(
    newest: u32,
    verdict: impl Fn(u32) -> Verdict + Copy,
    denials: Denials,
) -> Result<Filter, FilterError> {
    match build_full(Layout::Compact, newest, verdict, denials) {
        Err(FilterError::JumpTooFar { .. }) => build_full(Layout::Inline, newest, verdict, denials),
        other => other,
    }
}

/// Shared `ret` instructions, emitted once at the end of a compact program.
#[derive(Debug, Default)]
struct Returns(Vec<(u32, Label)>);

impl Returns {
    fn label(&mut self, asm: &mut Asm, action: u32) -> Label {
        if let Some((_, l)) = self.0.iter().find(|(a, _)| *a == action) {
            return *l;
        }
        let l = asm.label();
        self.0.push((action, l));
        l
    }
}

/// [`build`] with a chosen layout.
#[cfg(test)]
pub(crate) fn build_with(
    layout: Layout,
    newest: u32,
    verdict: impl Fn(u32) -> Verdict,
) -> Result<Filter, FilterError> {
    build_full(layout, newest, verdict, Denials::Errno)
}

fn build_full(
    layout: Layout,
    newest: u32,
    verdict: impl Fn(u32) -> Verdict,
    denials: Denials,
) -> Result<Filter, FilterError> {
    // Partition 0..=newest into ranges of equal leaves; each entry starts a range.
    let mut ranges: Vec<(u32, Leaf)> = Vec::new();
    let mut blocks: Vec<(u32, &'static [Check], i32)> = Vec::new();
    for nr in 0..=newest {
        let v = verdict(nr);
        if let Verdict::AllowIf { checks, otherwise } = v {
            blocks.push((nr, checks, otherwise));
        }
        let l = leaf(nr, v, denials);
        if ranges.last().map(|&(_, last)| last) != Some(l) {
            ranges.push((nr, l));
        }
    }

    let mut asm = Asm::default();
    let mut rets = Returns::default();
    let block_labels: Vec<(u32, Label)> = blocks.iter().map(|b| (b.0, asm.label())).collect();

    // Prologue: architecture, x32, numbers newer than the table.
    asm.load(OFF_ARCH);
    let (ok, kill) = (asm.label(), asm.label());
    asm.cond(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, ok, kill);
    asm.place(kill);
    asm.ret(RET_KILL);
    asm.place(ok);
    asm.load(OFF_NR);
    let (x32, native) = (asm.label(), asm.label());
    asm.cond(BPF_JMP_JGE_K, X32_SYSCALL_BIT, x32, native);
    asm.place(x32);
    asm.ret(RET_KILL);
    asm.place(native);
    let (newer, known) = (asm.label(), asm.label());
    asm.cond(BPF_JMP_JGT_K, newest, newer, known);
    asm.place(newer);
    asm.ret(denials.ret(newest.saturating_add(1), libc::ENOSYS));
    asm.place(known);

    match layout {
        Layout::Inline => emit_tree(&mut asm, &ranges, &block_labels),
        Layout::Compact => {
            let mut target = |asm: &mut Asm, l: Leaf| match l {
                Leaf::Ret(action) => rets.label(asm, action),
                Leaf::Block(nr) => block_labels
                    .iter()
                    .find(|(n, _)| *n == nr)
                    .map_or_else(|| rets.label(asm, RET_KILL), |(_, l)| *l),
            };
            if let [(_, only)] = ranges[..] {
                let l = target(&mut asm, only);
                asm.ja(l);
            } else {
                emit_node(&mut asm, &ranges, &mut target);
            }
        }
    }

    for ((nr, checks, otherwise), (_, label)) in blocks.iter().zip(&block_labels) {
        asm.place(*label);
        let refusal = denials.ret(*nr, *otherwise);
        let (pass, fail) = match layout {
            Layout::Compact => (
                rets.label(&mut asm, RET_ALLOW),
                rets.label(&mut asm, refusal),
            ),
            Layout::Inline => (asm.label(), asm.label()),
        };
        for check in checks.iter() {
            emit_check(&mut asm, check, fail)?;
        }
        match layout {
            Layout::Compact => asm.ja(pass),
            Layout::Inline => {
                asm.ret(RET_ALLOW);
                asm.place(fail);
                asm.ret(refusal);
            }
        }
    }
    for (action, label) in std::mem::take(&mut rets.0) {
        asm.place(label);
        asm.ret(action);
    }
    asm.finish()
}

/// Compact layout: one `jge` per inner node; a side that is a single range jumps straight
/// to that range's shared `ret` or argument block.
fn emit_node(
    asm: &mut Asm,
    ranges: &[(u32, Leaf)],
    target: &mut impl FnMut(&mut Asm, Leaf) -> Label,
) {
    let mid = ranges.len() / 2;
    let (left, right) = ranges.split_at(mid);
    let mut side = |asm: &mut Asm, part: &[(u32, Leaf)]| match part {
        [(_, only)] => target(asm, *only),
        _ => asm.label(),
    };
    let lt = side(asm, left);
    let rt = side(asm, right);
    asm.cond(BPF_JMP_JGE_K, right[0].0, rt, lt);
    if left.len() > 1 {
        asm.place(lt);
        emit_node(asm, left, target);
    }
    if right.len() > 1 {
        asm.place(rt);
        emit_node(asm, right, target);
    }
}

fn emit_tree(asm: &mut Asm, ranges: &[(u32, Leaf)], blocks: &[(u32, Label)]) {
    match ranges {
        [] => asm.ret(ret_errno(libc::ENOSYS)), // unreachable: 0..=newest is never empty
        [(_, Leaf::Ret(action))] => asm.ret(*action),
        [(_, Leaf::Block(nr))] => match blocks.iter().find(|(n, _)| n == nr) {
            Some((_, label)) => asm.ja(*label),
            None => asm.ret(RET_KILL), // unreachable: every Block leaf has a block
        },
        _ => {
            let mid = ranges.len() / 2;
            let right = asm.label();
            let left = asm.label();
            asm.cond(BPF_JMP_JGE_K, ranges[mid].0, right, left);
            asm.place(left);
            emit_tree(asm, &ranges[..mid], blocks);
            asm.place(right);
            emit_tree(asm, &ranges[mid..], blocks);
        }
    }
}

fn arg_offset(arg: u8) -> Result<u32, FilterError> {
    if arg > 5 {
        return Err(FilterError::BadArgument { arg });
    }
    // Little-endian: the low word of args[i] comes first.
    Ok(OFF_ARGS + 8 * u32::from(arg))
}

fn emit_check(asm: &mut Asm, check: &Check, fail: Label) -> Result<(), FilterError> {
    match *check {
        Check::LowIn { arg, mask, values } => {
            asm.load(arg_offset(arg)?);
            if mask != u32::MAX {
                asm.and(mask);
            }
            let pass = asm.label();
            for (i, v) in values.iter().enumerate() {
                let next = if i + 1 == values.len() {
                    fail
                } else {
                    asm.label()
                };
                match v {
                    Operand::Const(k) => asm.cond(BPF_JMP_JEQ_K, *k, pass, next),
                    Operand::SelfPid => asm.cond_pid(pass, next),
                }
                if next != fail {
                    asm.place(next);
                }
            }
            if values.is_empty() {
                asm.ja(fail);
            }
            asm.place(pass);
        }
        Check::LowMaskedNot { arg, mask, value } => {
            asm.load(arg_offset(arg)?);
            asm.and(mask);
            let pass = asm.label();
            asm.cond(BPF_JMP_JEQ_K, value, fail, pass);
            asm.place(pass);
        }
        Check::Null { arg } => {
            let off = arg_offset(arg)?;
            asm.load(off);
            let low_ok = asm.label();
            asm.cond(BPF_JMP_JEQ_K, 0, low_ok, fail);
            asm.place(low_ok);
            asm.load(off + 4);
            let pass = asm.label();
            asm.cond(BPF_JMP_JEQ_K, 0, pass, fail);
            asm.place(pass);
        }
    }
    Ok(())
}

/// What a table says for `nr` with `args`, as the seccomp return value: the oracle programs
/// (and the kernel sweep) are checked against. `pid` stands for [`Operand::SelfPid`].
#[cfg(test)]
pub(crate) fn oracle(
    verdict: fn(u32) -> Verdict,
    denials: Denials,
    nr: u32,
    args: [u64; 6],
    pid: u32,
) -> u32 {
    match verdict(nr) {
        Verdict::Allow => RET_ALLOW,
        Verdict::Errno(e) => denials.ret(nr, e),
        Verdict::Kill => RET_KILL,
        Verdict::AllowIf { checks, otherwise } => {
            let ok = checks.iter().all(|c| match *c {
                Check::LowIn { arg, mask, values } => {
                    let v = (args[arg as usize] as u32) & mask;
                    values.iter().any(|o| match o {
                        Operand::Const(k) => *k == v,
                        Operand::SelfPid => v == pid,
                    })
                }
                Check::LowMaskedNot { arg, mask, value } => {
                    (args[arg as usize] as u32) & mask != value
                }
                Check::Null { arg } => args[arg as usize] == 0,
            });
            if ok {
                RET_ALLOW
            } else {
                denials.ret(nr, otherwise)
            }
        }
    }
}

/// The result of two stacked filters: the most restrictive action wins (the kernel compares
/// the action bits as signed numbers, so KILL_PROCESS is the smallest); on a tie the newer
/// filter's data is kept.
#[cfg(test)]
pub(crate) fn stacked(older: u32, newer: u32) -> u32 {
    let action = |r: u32| (r & libc::SECCOMP_RET_ACTION_FULL) as i32;
    if action(older) < action(newer) {
        older
    } else {
        newer
    }
}

/// A reference interpreter for the instructions this module emits, used by the tests to
/// check the program against the tables for every syscall number and argument pattern.
#[cfg(test)]
pub(crate) fn run(insns: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    run_counted(insns, arch, nr, args).0
}

/// [`run`], also returning how many instructions were executed.
#[cfg(test)]
pub(crate) fn run_counted(
    insns: &[sock_filter],
    arch: u32,
    nr: u32,
    args: [u64; 6],
) -> (u32, usize) {
    let word = |off: u32| -> u32 {
        match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            o if o >= OFF_ARGS => {
                let i = ((o - OFF_ARGS) / 8) as usize;
                let a = args[i];
                if (o - OFF_ARGS) % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => panic!("load of unexpected offset {off}"),
        }
    };
    let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0usize);
    loop {
        let i = insns[pc];
        pc += 1;
        steps += 1;
        match i.code {
            BPF_LD_W_ABS => acc = word(i.k),
            BPF_ALU_AND_K => acc &= i.k,
            BPF_JMP_JA => pc += i.k as usize,
            BPF_JMP_JEQ_K | BPF_JMP_JGT_K | BPF_JMP_JGE_K => {
                let taken = match i.code {
                    BPF_JMP_JEQ_K => acc == i.k,
                    BPF_JMP_JGT_K => acc > i.k,
                    _ => acc >= i.k,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            BPF_RET_K => return (i.k, steps),
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::policy::{
        stage1_verdict, stage2_verdict, NEWEST_KNOWN_SYSCALL, STAGE1_X86_64, STAGE2_X86_64,
    };
    use super::*;

    const PID: u32 = 4242;

    fn program() -> Vec<sock_filter> {
        program_with(Layout::Compact)
    }

    fn program_with(layout: Layout) -> Vec<sock_filter> {
        let f = build_with(layout, NEWEST_KNOWN_SYSCALL, stage1_verdict).expect("stage 1 builds");
        let mut insns = f.insns;
        for slot in f.pid_slots {
            insns[slot].k = PID;
        }
        insns
    }

    /// What the stage-1 table says for `nr` with `args`: the oracle the program is checked
    /// against.
    fn expected(nr: u32, args: [u64; 6]) -> u32 {
        expected_by(stage1_verdict, nr, args)
    }

    /// What `verdict`'s table says for `nr` with `args`.
    fn expected_by(verdict: fn(u32) -> Verdict, nr: u32, args: [u64; 6]) -> u32 {
        oracle(verdict, Denials::Errno, nr, args, PID)
    }

    /// Argument patterns: zeros, the interesting constants of every rule, high-bit variants
    /// (CVE-2019-10063), and all-ones.
    fn arg_patterns() -> Vec<[u64; 6]> {
        let mut words: Vec<u64> = vec![0, 1, 2, 3, 4, 6, 7, 0x40, 0x200, u64::MAX, u64::from(PID)];
        for rule in STAGE1_X86_64.iter().chain(STAGE2_X86_64) {
            if let Verdict::AllowIf { checks, .. } = rule.verdict {
                for c in checks {
                    if let Check::LowIn { values, .. } = c {
                        for v in values.iter() {
                            if let Operand::Const(k) = v {
                                words.push(u64::from(*k));
                            }
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        for &w in &words {
            for hi in [0u64, 0x1_0000_0000, 0xffff_ffff_0000_0000] {
                for slot in 0..6 {
                    let mut a = [0u64; 6];
                    a[slot] = w | hi;
                    out.push(a);
                }
                out.push([w | hi; 6]);
            }
        }
        out
    }

    #[test]
    fn program_matches_tables_for_every_number() {
        for layout in [Layout::Compact, Layout::Inline] {
            check_against_tables(&program_with(layout));
        }
        // The default build uses the compact layout for today's tables.
        let built = build(NEWEST_KNOWN_SYSCALL, stage1_verdict).expect("build");
        assert_eq!(built.insns.len(), program_with(Layout::Compact).len());
    }

    fn check_against_tables(insns: &[sock_filter]) {
        let insns = insns.to_vec();
        let patterns = arg_patterns();
        for nr in 0..=NEWEST_KNOWN_SYSCALL + 64 {
            for args in &patterns {
                assert_eq!(
                    run(&insns, AUDIT_ARCH_X86_64, nr, *args),
                    expected(nr, *args),
                    "nr {nr} args {args:x?}"
                );
            }
        }
    }

    fn stage2_program() -> Vec<sock_filter> {
        let f = build(NEWEST_KNOWN_SYSCALL, stage2_verdict).expect("stage 2 builds");
        assert!(f.pid_slots.is_empty(), "stage 2 must not depend on the pid");
        f.insns
    }

    #[test]
    fn stage2_program_matches_its_table_for_every_number() {
        for layout in [Layout::Compact, Layout::Inline] {
            let f = build_with(layout, NEWEST_KNOWN_SYSCALL, stage2_verdict).expect("builds");
            let patterns = arg_patterns();
            for nr in 0..=NEWEST_KNOWN_SYSCALL + 64 {
                for args in &patterns {
                    assert_eq!(
                        run(&f.insns, AUDIT_ARCH_X86_64, nr, *args),
                        expected_by(stage2_verdict, nr, *args),
                        "{layout:?} nr {nr} args {args:x?}"
                    );
                }
            }
        }
        // The bytes sent in Hello decode back to the same program.
        let f = build(NEWEST_KNOWN_SYSCALL, stage2_verdict).expect("builds");
        let bytes = f.to_bytes().expect("no pid slots");
        assert_eq!(bytes.len(), f.insns.len() * 8);
        for (i, c) in bytes.chunks_exact(8).enumerate() {
            let insn = f.insns[i];
            assert_eq!(u16::from_le_bytes([c[0], c[1]]), insn.code);
            assert_eq!((c[2], c[3]), (insn.jt, insn.jf));
            assert_eq!(u32::from_le_bytes([c[4], c[5], c[6], c[7]]), insn.k);
        }
        // A program that needs the pid cannot be sent.
        assert_eq!(
            build(NEWEST_KNOWN_SYSCALL, stage1_verdict)
                .expect("builds")
                .to_bytes()
                .err(),
            Some(FilterError::NeedsPid)
        );
    }

    /// Both filters together, as the locked-down guest lives: nothing that takes a path,
    /// creates a socket or starts a process or thread is allowed, for any argument pattern;
    /// the graceful errnos libc probes rely on survive stacking; stage-1 kills stay kills.
    #[test]
    fn stage1_plus_stage2_close_paths_sockets_and_processes() {
        let (one, two) = (program(), stage2_program());
        let both = |nr: u32, args: [u64; 6]| {
            stacked(
                run(&one, AUDIT_ARCH_X86_64, nr, args),
                run(&two, AUDIT_ARCH_X86_64, nr, args),
            )
        };
        let closed: &[(&str, libc::c_long)] = &[
            ("open", libc::SYS_open),
            ("openat", libc::SYS_openat),
            ("openat2", libc::SYS_openat2),
            ("creat", libc::SYS_creat),
            ("stat", libc::SYS_stat),
            ("lstat", libc::SYS_lstat),
            ("newfstatat", libc::SYS_newfstatat),
            ("statx", libc::SYS_statx),
            ("access", libc::SYS_access),
            ("faccessat", libc::SYS_faccessat),
            ("faccessat2", libc::SYS_faccessat2),
            ("readlink", libc::SYS_readlink),
            ("readlinkat", libc::SYS_readlinkat),
            ("chdir", libc::SYS_chdir),
            ("getcwd", libc::SYS_getcwd),
            ("getdents64", libc::SYS_getdents64),
            ("mkdir", libc::SYS_mkdir),
            ("unlink", libc::SYS_unlink),
            ("rename", libc::SYS_rename),
            ("chmod", libc::SYS_chmod),
            ("fchmodat", libc::SYS_fchmodat),
            ("truncate", libc::SYS_truncate),
            ("utimensat", libc::SYS_utimensat),
            ("statfs", libc::SYS_statfs),
            ("inotify_add_watch", libc::SYS_inotify_add_watch),
            ("execve", libc::SYS_execve),
            ("execveat", libc::SYS_execveat),
            ("socket", libc::SYS_socket),
            ("socketpair", libc::SYS_socketpair),
            ("connect", libc::SYS_connect),
            ("bind", libc::SYS_bind),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("fork", libc::SYS_fork),
            ("vfork", libc::SYS_vfork),
            ("seccomp", libc::SYS_seccomp),
            ("mprotect", libc::SYS_mprotect),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("memfd_create", libc::SYS_memfd_create),
        ];
        for &(name, nr) in closed {
            for args in arg_patterns() {
                assert_ne!(both(nr as u32, args), RET_ALLOW, "{name} {args:x?}");
            }
        }
        let empty = [0u64; 6];
        let errno = |e: i32| ret_errno(e);
        let exact: &[(&str, libc::c_long, u32)] = &[
            ("open", libc::SYS_open, errno(libc::EACCES)),
            ("openat", libc::SYS_openat, errno(libc::EACCES)),
            ("newfstatat", libc::SYS_newfstatat, errno(libc::ENOSYS)),
            ("statx", libc::SYS_statx, errno(libc::ENOSYS)),
            ("clone3", libc::SYS_clone3, errno(libc::ENOSYS)),
            ("openat2", libc::SYS_openat2, errno(libc::ENOSYS)),
            ("ioctl", libc::SYS_ioctl, errno(libc::ENOTTY)),
            ("socket", libc::SYS_socket, errno(libc::EACCES)),
            ("clone", libc::SYS_clone, errno(libc::EPERM)),
            ("execve", libc::SYS_execve, RET_KILL),
            ("bpf", libc::SYS_bpf, RET_KILL),
            ("ptrace", libc::SYS_ptrace, RET_KILL),
            ("fstat", libc::SYS_fstat, RET_ALLOW),
            ("read", libc::SYS_read, RET_ALLOW),
            ("write", libc::SYS_write, RET_ALLOW),
            ("poll", libc::SYS_poll, RET_ALLOW),
            ("exit_group", libc::SYS_exit_group, RET_ALLOW),
        ];
        for &(name, nr, want) in exact {
            assert_eq!(both(nr as u32, empty), want, "{name}");
        }
        // newfstatat with AT_EMPTY_PATH is refused too: the flag does not stop the kernel
        // from resolving a non-empty path.
        let at_empty_path = libc::AT_EMPTY_PATH as u64;
        assert_eq!(
            both(libc::SYS_newfstatat as u32, [3, 0, 0, at_empty_path, 0, 0]),
            errno(libc::ENOSYS)
        );
        // The pthread clone stage 1 allows is refused after stage 2.
        let thread = [
            u64::from(super::super::policy::PTHREAD_CLONE_FLAGS),
            0,
            0,
            0,
            0,
            0,
        ];
        assert_eq!(both(libc::SYS_clone as u32, thread), errno(libc::EPERM));
        // Anonymous memory: read-write yes, executable no (even without write).
        let (rw, rx) = (
            (libc::PROT_READ | libc::PROT_WRITE) as u64,
            (libc::PROT_READ | libc::PROT_EXEC) as u64,
        );
        assert_eq!(
            both(libc::SYS_mmap as u32, [0, 4096, rw, 0x22, u64::MAX, 0]),
            RET_ALLOW
        );
        assert_eq!(
            both(libc::SYS_mmap as u32, [0, 4096, rx, 0x22, u64::MAX, 0]),
            errno(libc::EACCES)
        );
        // Stage 1's argument checks still hold under stage 2's plain allows.
        assert_eq!(
            both(libc::SYS_sendto as u32, [3, 0, 0, 0, 1, 0]),
            errno(libc::EPERM)
        );
        assert_eq!(
            both(
                libc::SYS_futex as u32,
                [0, libc::FUTEX_LOCK_PI as u64, 0, 0, 0, 0]
            ),
            errno(libc::EPERM)
        );
        assert_eq!(
            both(libc::SYS_tgkill as u32, [1, 1, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        assert_eq!(
            both(libc::SYS_tgkill as u32, [u64::from(PID), 1, 6, 0, 0, 0]),
            RET_ALLOW
        );
        // prctl: thread names only.
        let prctl =
            |option: libc::c_int| both(libc::SYS_prctl as u32, [option as u64, 0, 0, 0, 0, 0]);
        assert_eq!(prctl(libc::PR_SET_NAME), RET_ALLOW);
        assert_eq!(prctl(libc::PR_GET_NAME), RET_ALLOW);
        for option in [
            libc::PR_SET_MM,
            libc::PR_SET_SECCOMP,
            libc::PR_SET_DUMPABLE,
            libc::PR_SET_MDWE,
        ] {
            assert_eq!(prctl(option), errno(libc::EPERM), "prctl option {option}");
        }
        // Numbers newer than the table: ENOSYS from both, so libc falls back.
        assert_eq!(both(NEWEST_KNOWN_SYSCALL + 1, empty), errno(libc::ENOSYS));
        assert_eq!(both(400, empty), errno(libc::ENOSYS));
    }

    #[test]
    fn audit_programs_trap_every_refusal_but_the_kept_ones() {
        use super::super::policy::{audit_keeps, stage2_wasm_verdict};
        let audit = Denials::AuditTrap { keep: audit_keeps };
        let tables: [fn(u32) -> Verdict; 3] = [stage1_verdict, stage2_verdict, stage2_wasm_verdict];
        let patterns = arg_patterns();
        for table in tables {
            for layout in [Layout::Compact, Layout::Inline] {
                let f = build_full(layout, NEWEST_KNOWN_SYSCALL, table, audit).expect("builds");
                let mut insns = f.insns;
                for slot in f.pid_slots {
                    insns[slot].k = PID;
                }
                for nr in 0..=NEWEST_KNOWN_SYSCALL + 64 {
                    for args in &patterns {
                        let got = run(&insns, AUDIT_ARCH_X86_64, nr, *args);
                        assert_eq!(got, oracle(table, audit, nr, *args, PID), "{layout:?} {nr}");
                        // Never an errno, except for the kept numbers; kills stay kills.
                        if got & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_ERRNO {
                            assert!(audit_keeps(nr), "{nr} returns an errno in audit mode");
                        }
                    }
                }
            }
        }
        // The kept ioctl errno survives; an unknown number traps with ENOSYS as its data.
        let f = build_denying(NEWEST_KNOWN_SYSCALL, stage2_verdict, audit).expect("builds");
        let ioctl = libc::SYS_ioctl as u32;
        assert_eq!(
            run(&f.insns, AUDIT_ARCH_X86_64, ioctl, [0; 6]),
            ret_errno(libc::ENOTTY)
        );
        assert_eq!(
            run(
                &f.insns,
                AUDIT_ARCH_X86_64,
                NEWEST_KNOWN_SYSCALL + 1,
                [0; 6]
            ),
            RET_TRAP | libc::ENOSYS as u32
        );
        assert_eq!(
            run(&f.insns, AUDIT_ARCH_X86_64, libc::SYS_execve as u32, [0; 6]),
            RET_KILL
        );
    }

    #[test]
    fn stage2_program_is_small() {
        let insns = stage2_program();
        // Install cost grows with length (module doc); today's table builds to ~80.
        assert!(insns.len() <= 128, "{} instructions", insns.len());
    }

    #[test]
    fn foreign_arch_and_x32_are_killed() {
        let insns = program();
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        for nr in [0, 1, 20, 39, 59, 400] {
            assert_eq!(run(&insns, AUDIT_ARCH_I386, nr, [0; 6]), RET_KILL);
            assert_eq!(
                run(&insns, AUDIT_ARCH_X86_64, nr | X32_SYSCALL_BIT, [0; 6]),
                RET_KILL
            );
        }
        assert_eq!(run(&insns, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]), RET_KILL);
    }

    #[test]
    fn high_bits_do_not_escape_argument_checks() {
        let insns = program();
        // ioctl(TIOCSTI) with high bits: still ENOTTY (no argument check at all).
        let tiocsti = 0x5412u64 | (0x123 << 32);
        assert_eq!(
            run(
                &insns,
                AUDIT_ARCH_X86_64,
                libc::SYS_ioctl as u32,
                [0, tiocsti, 0, 0, 0, 0]
            ),
            ret_errno(libc::ENOTTY)
        );
        // sendto with a non-NULL address hidden in the high word: refused.
        assert_eq!(
            run(
                &insns,
                AUDIT_ARCH_X86_64,
                libc::SYS_sendto as u32,
                [3, 0, 0, 0, 1 << 32, 0]
            ),
            ret_errno(libc::EPERM)
        );
    }

    #[test]
    fn program_is_small_and_shallow() {
        let insns = program();
        assert!(insns.len() < MAX_FILTER_LEN, "{} instructions", insns.len());
        // Depth: instructions executed for the worst argument-free syscall number.
        let worst = (0..=NEWEST_KNOWN_SYSCALL)
            .filter(|&nr| !matches!(stage1_verdict(nr), Verdict::AllowIf { .. }))
            .map(|nr| run_counted(&insns, AUDIT_ARCH_X86_64, nr, [0; 6]).1)
            .max()
            .unwrap_or(0);
        assert!(worst <= 16, "worst path {worst} instructions");
    }

    #[test]
    fn errors_instead_of_panics() {
        fn bad(_: u32) -> Verdict {
            Verdict::AllowIf {
                checks: &[Check::Null { arg: 9 }],
                otherwise: libc::EPERM,
            }
        }
        assert_eq!(
            build(3, bad).err(),
            Some(FilterError::BadArgument { arg: 9 })
        );
        assert!(matches!(
            build(NEWEST_KNOWN_SYSCALL, |_| Verdict::AllowIf {
                checks: &[Check::Null { arg: 0 }],
                otherwise: libc::EPERM,
            }),
            Err(FilterError::TooLong { .. } | FilterError::JumpTooFar { .. })
        ));
    }
}
#[cfg(test)]
mod stats {
    use super::super::policy::{stage1_verdict, NEWEST_KNOWN_SYSCALL};
    use super::*;
    #[test]
    #[ignore = "prints statistics"]
    fn print_stats() {
        let f = build(NEWEST_KNOWN_SYSCALL, stage1_verdict).expect("build");
        let mut ranges = 0;
        let mut last = None;
        let mut blocks = 0;
        for nr in 0..=NEWEST_KNOWN_SYSCALL {
            let v = stage1_verdict(nr);
            if matches!(v, Verdict::AllowIf { .. }) {
                blocks += 1;
            }
            let l = leaf(nr, v, Denials::Errno);
            if Some(l) != last {
                ranges += 1;
                last = Some(l);
            }
        }
        eprintln!("insns {} ranges {ranges} blocks {blocks}", f.insns.len());
    }
}
