//! Asking for a secret on the terminal without echoing it, and without leaving the terminal
//! broken: echo is switched off only while reading, and a Ctrl-C (or SIGTERM) at the prompt
//! switches it back on before prov exits. Without a terminal the secret is one line of stdin.

use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The terminal settings to restore from a signal handler, which may only touch statics.
static mut SAVED: Option<libc::termios> = None;
static TTY_FD: AtomicI32 = AtomicI32::new(-1);
static ARMED: AtomicBool = AtomicBool::new(false);

/// Restores the terminal, then lets the signal do what it does by default (ends prov with
/// 130/143 as the shell sees it). Only async-signal-safe calls: `tcsetattr`, `signal`, `raise`.
extern "C" fn restore_and_reraise(sig: libc::c_int) {
    if ARMED.swap(false, Ordering::SeqCst) {
        // SAFETY: SAVED is written before ARMED is set and not written while armed.
        unsafe {
            if let Some(t) = (*std::ptr::addr_of!(SAVED)).as_ref() {
                libc::tcsetattr(TTY_FD.load(Ordering::SeqCst), libc::TCSANOW, t);
            }
        }
    }
    // SAFETY: resetting to the default action and raising are async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Asks `question` (written as it is) when prov runs on a terminal, as Ansible asks
/// `vars_prompt` questions: without echo when `private`. `None` when stdin is not a terminal
/// (nothing is asked) or nothing could be read.
pub fn ask_on_terminal(question: &str, private: bool) -> Option<String> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return None;
    }
    if private {
        return read_hidden(question);
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let mut w = &tty;
    let _ = write!(w, "{question}");
    let _ = w.flush();
    read_line(&mut std::io::BufReader::new(&tty))
}

/// Asks `prompt` on the terminal and reads a line without echo; `None` when nothing could
/// be read.
pub fn read_secret(prompt: &str) -> Option<String> {
    read_hidden(&format!("{prompt}: "))
}

/// Writes `question` to the terminal and reads a line without echo (a line of stdin when
/// there is no terminal).
fn read_hidden(question: &str) -> Option<String> {
    let Ok(tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return read_line(&mut std::io::stdin().lock());
    };
    let fd = tty.as_raw_fd();
    // SAFETY: a zeroed termios is a valid out-parameter for tcgetattr.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is an open terminal; saved is a valid pointer.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return read_line(&mut std::io::stdin().lock());
    }
    let mut w = &tty;
    // Echo goes off before the prompt shows, so nothing typed after it is ever echoed.
    let line = with_echo_off(fd, saved, || {
        let _ = write!(w, "{question}");
        let _ = w.flush();
        read_line(&mut std::io::BufReader::new(&tty))
    });
    let _ = writeln!(w);
    line
}

fn with_echo_off<T>(fd: i32, saved: libc::termios, read: impl FnOnce() -> T) -> T {
    // SAFETY: single-threaded use at a prompt; the handler reads SAVED only once ARMED is set.
    unsafe {
        *std::ptr::addr_of_mut!(SAVED) = Some(saved);
        TTY_FD.store(fd, Ordering::SeqCst);
        ARMED.store(true, Ordering::SeqCst);
        let handler = restore_and_reraise as extern "C" fn(libc::c_int) as libc::sighandler_t;
        let old_int = libc::signal(libc::SIGINT, handler);
        let old_term = libc::signal(libc::SIGTERM, handler);
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet);
        let out = read();
        if ARMED.swap(false, Ordering::SeqCst) {
            libc::tcsetattr(fd, libc::TCSANOW, &saved);
        }
        libc::signal(libc::SIGINT, old_int);
        libc::signal(libc::SIGTERM, old_term);
        out
    }
}

fn read_line(r: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
    }
}
