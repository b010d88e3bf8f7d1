package operations

import (
	"testing"

	"github.com/arsenal-go/arsenal/ops"
)

// Every operation's description must pass the registry's checks.
func TestRegisterAll(t *testing.T) {
	reg := ops.NewRegistry()
	if err := Register(reg, &Env{}); err != nil {
		t.Fatal(err)
	}
	if n := len(reg.Operations()); n != 22 {
		t.Fatalf("%d operations registered", n)
	}
}
