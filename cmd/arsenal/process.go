package main

// arsenal info, kill, send and trace: one process, named by PID or by
// its registered name. They print the whole answer.

func init() {
	addVerb(clientVerb{name: "info", op: "process.info", summary: "describe one process on any node (client)", positional: "pid",
		description: "Describe one process: status, mailbox, messages, links, monitors, parent, current call."})
	addVerb(clientVerb{name: "kill", op: "process.kill", summary: "stop a process on any node (client)", positional: "pid",
		description: "Send an exit signal and wait for the process to exit. Supervisors and system processes need --force."})
	addVerb(clientVerb{name: "send", op: "process.send", summary: "send a message to a process on any node (client)", positional: "pid",
		description: "Send, cast or call a JSON object to a process; with --mode call, print its reply."})
	addVerb(clientVerb{name: "trace", op: "process.trace", summary: "trace a process's messages (client)", positional: "pid",
		description: "Start a trace and print the answer, whose data.trace_id names it; read it with 'arsenal ops call trace.get id=ID'."})
}
