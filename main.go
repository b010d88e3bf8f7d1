package arsenal

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Main runs a composed node for app in a binary's main function, and
// exits with Run's code:
//
//	func main() { arsenal.Main(myservice.App()) }
//
// The binary then takes every flag of `arsenal node` (--help lists them),
// their ARSENAL_* environment variables and a JSON --config file; it
// speaks the control protocol (--control stdio, --control-socket) so
// that clustertest and `arsenal cluster start --binary` can run it.
func Main(app App) { os.Exit(Run(app, os.Args[1:], os.Stdout, os.Stderr)) }

// StopTimeout bounds a graceful stop in Main and Run.
const StopTimeout = 15 * time.Second

func run(app App, args []string, stdout, stderr io.Writer) int {
	name := app.name()
	cfg, err := ParseConfig(app, args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	if cfg.Control.Stdio && cfg.Control.Out == nil {
		cfg.Control.Out = stdout
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	n, err := Start(ctx, cfg)
	if err != nil {
		cfg.Node.Logger.Error("node failed to start", "err", err)
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	why := "signal"
	select {
	case <-ctx.Done():
	case why = <-n.StopRequested():
	}
	n.log.Info("stopping", "why", why)
	sctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	defer cancel()
	if err := n.Stop(sctx); err != nil {
		n.log.Error("stop", "err", err)
		fmt.Fprintf(stderr, "%s: stop: %v\n", name, err)
		return 1
	}
	return 0
}
