// Package process is Arsenal's process runtime: lightweight processes with
// Erlang/OTP semantics in Go.
//
// A process has a PID, a mailbox and either a Behaviour (callbacks, the job
// of gen_server) or a plain function (SpawnFunc). Send is asynchronous and
// keeps order between one sender and one receiver; Call waits for a reply
// with a timeout; links propagate exits both ways; monitors deliver exactly
// one DownMsg; trapping exits turns exit signals into ExitMsg messages; Kill
// cannot be trapped. A panic in a callback ends only its process, with a
// *PanicError reason that carries the stack.
//
// A behaviour process owns a goroutine only while it has messages to
// handle, so an idle process costs a few hundred bytes, not a goroutine
// stack. A function process owns a goroutine for its whole life.
//
// Go cannot stop a goroutine from outside. When a process is killed, or
// its supervisor's shutdown timeout runs out, the process is removed at
// once (links and monitors fire, names are released, pending calls are
// answered) and its Context is cancelled; a handler that ignores the
// context runs on to its end, but nothing it sends is attributed to a live
// process any more. docs/ARCHITECTURE.md discusses this choice.
//
// Messages to PIDs of other nodes go through a Remote, installed by the
// node layer; the runtime itself knows nothing about networks.
package process
