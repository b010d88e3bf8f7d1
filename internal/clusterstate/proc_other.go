//go:build !linux

package clusterstate

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// Alive reports whether pid is a running process whose command line is
// args. Without /proc it asks ps, which joins the arguments with spaces:
// weaker than the Linux check, still enough to tell a reused pid.
func Alive(pid int, args []string) bool {
	if pid <= 0 || len(args) == 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	out, err := exec.Command("ps", "-ww", "-o", "stat=,args=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return false
	}
	stat, cmd, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if strings.HasPrefix(stat, "Z") {
		return false
	}
	return strings.TrimSpace(cmd) == strings.Join(args, " ")
}
