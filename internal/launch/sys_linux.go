package launch

import "syscall"

func sysProcAttr() *syscall.SysProcAttr {
	// Pdeathsig fires when the thread that started the child exits; the
	// stdin-EOF watchdog in the node covers what it misses.
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
