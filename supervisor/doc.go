// Package supervisor runs children under OTP's supervision strategies.
//
// A supervisor is a process (a process.Behaviour) that traps exits, starts
// its children in order, restarts them when they exit according to their
// restart type and the supervisor's strategy, and stops them in reverse
// order when it stops. Too many restarts in too short a time (the restart
// intensity) make the supervisor give up and exit with an *IntensityError,
// so the failure moves up the tree, as in OTP.
//
// Strategies: OneForOne restarts only the child that exited; OneForAll
// stops and restarts all children; RestForOne restarts the child and the
// children started after it; Dynamic is OneForOne for children added at run
// time with StartChild (Elixir's DynamicSupervisor).
//
// Restart types: Permanent children are always restarted, Transient ones
// only after an abnormal exit (not normal, not shutdown), Temporary ones
// never (and are forgotten when they exit).
//
// Shutdown: each child gets Shutdown, and if it has not exited within its
// shutdown timeout it is killed. BrutalKill kills at once; Infinity waits
// as long as it takes (the default for child supervisors).
package supervisor
