package clusterstate

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// Alive reports whether pid is a running process (not a zombie) whose
// command line is exactly args. A pid the kernel reused for another
// program, or for another node, does not count.
func Alive(pid int, args []string) bool {
	if pid <= 0 || len(args) == 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and
	// may itself hold spaces or parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) {
		return false
	} else if s := stat[i+2]; s == 'Z' || s == 'X' || s == 'x' {
		return false
	}
	cmdline, err := os.ReadFile(dir + "/cmdline")
	if err != nil {
		return false
	}
	return sameArgs(bytes.Split(bytes.TrimSuffix(cmdline, []byte{0}), []byte{0}), args)
}

func sameArgs(got [][]byte, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if string(got[i]) != want[i] {
			return false
		}
	}
	return true
}
