// Package cluster is a node's membership in an Arsenal cluster: who the
// other nodes are, whether they are up, and what changed. It is libcluster
// (discovery, healing) plus a cluster state manager (topology, partition
// status, mode, an event feed) on top of hashicorp/memberlist, the SWIM
// gossip engine under Consul and Nomad.
//
// The node layer starts a Cluster with Start, reads Members and Topology,
// and subscribes to events to open and fail node links; the ops layer shows
// Topology and streams the feed over SSE. memberlist stays behind this
// package: nothing in the API exposes it except Config.Transport, which the
// transport package fills with its shared-port, fault-injecting transport
// (nil means memberlist's own UDP+TCP NetTransport on BindAddr).
//
// # Joining
//
// Start creates the memberlist and joins every address discovery returns,
// in parallel, not just one seed. memberlist.Join does a full push-pull
// state exchange with each address it contacts (memberlist.go: Join calls
// pushPullNode(addr, join=true) per address), in both directions, so
// joining all discovered peers is also the "push-pull right after joining"
// that keeps convergence off the 15–30 s anti-entropy tail. Providers:
// StaticSeeds, DNS (A/AAAA, one port), DNSSRV (a Kubernetes headless
// service; ports from the records); both DNS providers take a Resolver so
// tests can fake DNS.
//
// # Member status
//
// Each member is alive, suspect, dead or left, as this node sees it.
// memberlist v0.7.0 reports little of this directly, so:
//
//   - alive: EventDelegate NotifyJoin (new, or back from dead/left).
//   - dead or left: NotifyLeave reports both, and the Node it passes cannot
//     tell them apart (Node.State is shadowed by the internal nodeState.State
//     and never set). So Leave first sends a "leave intent" (name and
//     incarnation) to every member directly over memberlist's reliable
//     channel; NotifyLeave then means left if the intent arrived, dead
//     otherwise. An intent that arrives after the NotifyLeave turns dead
//     into left (one extra NodeLeft event). A peer that the intent never
//     reaches sees dead: that is the price of an unreachable peer. A
//     death of a member this node never suspected itself is held for
//     DeathGrace first, and checked with the member directly (see
//     Healing).
//   - suspect: memberlist has no callback for suspicion, and Members() lists
//     alive and suspect members alike. This package learns of suspicions
//     that its own probes raise, from the one log line memberlist writes
//     for them ("Suspect X has failed, no acks received"), and clears them
//     on the next successful direct probe (PingDelegate), on an alive
//     message with new metadata, or by a sweep every ProbeInterval that
//     finds the member still listed after the longest suspicion timeout
//     (it was refuted). Suspicions raised by other nodes and gossiped here
//     are invisible until they turn into a death. A suspect still counts as
//     up for partition status and mode, so one lost probe flips neither.
//
// The log line is the fragile part: it is pinned by the crash test (some
// survivor must report node_suspect before node_down). If a memberlist
// upgrade changes the wording, that test fails.
//
// Node metadata (at most 512 bytes; Config.Validate checks) carries the
// cluster name, the node's incarnation, its node-traffic and HTTP addresses
// and small tags. An AliveDelegate and a MergeDelegate refuse any peer whose
// metadata names another cluster (memberlist's Label, set to the cluster
// name, already keeps other clusters' packets out), and a ConflictDelegate
// logs two nodes claiming one name.
//
// # Events
//
// Subscribe returns a channel of Events: NodeUp, NodeSuspect, NodeDown,
// NodeLeft, NodeUpdated, NodeRemoved (a member no longer counted, see
// Partition status), NodeAdmitted (a member's incarnation counts again, or
// for the first time), PartitionChanged, ModeChanged. Events are numbered
// (Seq) in the order the view changed, and for one member they come in
// that order (up before down). One goroutine delivers them; memberlist's
// callbacks only append to its queue, so a slow subscriber never blocks
// membership: when a subscriber's buffer is full its event is dropped,
// counted in DroppedEvents, and the gap is visible in Seq. SubscribeAll is
// the lossless feed: its events wait in an unbounded queue of their own
// for the reader, in order; the node layer uses it, so that no node-down
// is ever missed. To combine a
// snapshot with the feed: Subscribe, then Topology, then skip events with
// Seq <= Topology.Seq.
//
// A restarted node (same name, new incarnation) is reported as NodeUp with
// Restarted and OldIncarnation set. If it came back before anyone declared
// it dead (memberlist sees only new metadata), a NodeDown for the old
// incarnation comes first, so the node layer can fail links of the old
// incarnation in both cases.
//
// # Healing
//
// memberlist alone never re-merges a healed partition: each side holds the
// other dead, gossips to the dead only for GossipToTheDeadTime, and its
// anti-entropy only picks alive members. The rejoin loop runs every
// RejoinInterval and joins every address that should be in the cluster and
// is not up: what discovery returns now, every member seen and now dead
// (for ReconnectTimeout, default 24 h), and the rival address of a name
// conflict whose holder is dead (a node restarted on a new address,
// accepted once DeadNodeReclaimTime has passed). After a partition the
// first push-pull heals at once when both sides raised their
// incarnations during the cut (Stale verdicts, below); otherwise it only
// makes each side refute "you are dead" with a new incarnation, so when a
// reached member is still not up the loop retries after ProbeInterval. Bound: a healed partition is one cluster again within
// about RejoinInterval + ProbeInterval + a few gossip intervals
// (ProfileSettings.HealBound), a rejoin attempt in flight at the heal
// included: rounds start every RejoinInterval from the start of the last
// one, and wait for their joins at most ProbeInterval; a join still
// waiting (a dial to an address the cut made unreachable waits for
// memberlist's TCPTimeout, a dropped SYN is never refused) goes on in the
// background, and the next round dials the same address afresh (at most
// ceil(TCPTimeout / RejoinInterval) + 2 joins to one address at once).
// The bound does not include a hung discovery call (each is cut off after
// 5 s).
//
// Stale verdicts. During a cut each side declares the other dead at the
// incarnation it last heard, and memberlist accepts "X dead (or suspect)
// at i" for an X it holds alive at i until X refutes with i+1; X refutes
// once, and ignores accusations below its incarnation. So, unguarded, the
// heal hands each side the other's verdicts about its own healthy
// members, and a node that missed the one refutation broadcast declares
// them dead. Four rules keep that out of the view:
//
//   - Refute before the accusation: a node that sees another member die
//     (not leave) raises its own incarnation (memberlist's UpdateNode) and
//     push-pulls with up to 8 up members, so that every member of its side
//     holds the raise (gossip alone can lose it: right after a cut
//     memberlist still spends broadcasts on the other side's members).
//     Verdicts about it from across the cut are then below its incarnation
//     and ignored, and the other side takes its alive message in the
//     first push-pull of the heal. A crash costs each survivor one
//     broadcast and up to 8 push-pulls.
//   - Hold a death heard from others: a death of a member this node never
//     suspected itself is held for Config.DeathGrace (two probe
//     intervals: 0.4 s on fast, 2 s on lan) and dropped if the member's
//     alive message arrives meanwhile; a real death is applied at the end
//     of the grace, with Since set to when it was first reported, so every
//     timeout counted from it is unchanged (only the NodeDown event comes
//     up to the grace later on the nodes that did not probe the dead
//     member themselves).
//   - Check a held death at the source: at once, one push-pull with the
//     accused; a live accused answers with its current incarnation, which
//     cancels the hold. This also repairs the slow-node case: a node whose
//     probes time out suspects healthy members, and others act on its
//     suspicion when they missed the refutation.
//   - Check an own suspicion at the source: when this node's own probe of
//     a member fails, it push-pulls with the member at once (which tells
//     it of the suspicion, so it refutes) and again one probe interval
//     later if it is still suspect here (which brings the refuted
//     incarnation back before the suspicion timer runs out). A crashed
//     member answers neither; its detection is unchanged.
//
// Measured on 5 real processes (fast, loopback; docs/BENCHMARKS.md): false
// deaths heard from others after a 3|2 heal, 5 in 30 heals before, none
// in 75 after; with one node delayed 200 ms both ways, 5 to 7 false
// deaths among the healthy nodes per 30 s before, none in four runs
// after. What remained after the first three rules was a node's own
// failed probe of a healthy member on a starved machine (one in 15 heals
// at load 13, fast's 100 ms probe timeout), which the fourth addresses
// (its effect not measured: too rare at the load of the last runs); the
// profile-fit warning says when the profile is too tight for the
// network or the machine. The decisions do not
// act on brief deaths anyway: removal needs a member dead for the removal
// margin, placement waits for a stable view and restarts a child only
// after StableAfter + its margin, and placement's lease runs on node
// links, not on this view. Code that acts on PartitionChanged should
// likewise wait for the status to be stable for a while, as Akka's
// stable-after does.
//
// # Does the profile fit the network
//
// Each node keeps the round trips of its last 64 successful direct probes
// and counts its suspicions of live members that were refuted. A 90th
// percentile above half the probe timeout, or 3 refuted suspicions within
// a minute, sets PartitionStatus.ProfileWarning (logged once, shown by the
// health operation's recommendations): failure detection on this network
// declares healthy nodes dead. It clears when the round trips are back
// below a quarter of the probe timeout and no suspicion was refuted for a
// minute.
//
// # Partition status
//
// One rule (PartitionOf), used here, by package placement's split-brain
// policies and lease, and by the registry. The live members are those
// neither left nor removed (below). Up counts the live members alive or
// suspect and not joining, this node included; the denominator Expected is the number of
// live members, and, until the node's first full view, at least
// Config.ExpectedSize. Then:
//
//	Healthy   up >= expected
//	Partial   up > expected/2  (a strict majority)
//	Minority  up < expected/2
//	tie       up == expected/2: Partial if the lowest name among the live
//	          members (dead ones included) is up on this side, Minority
//	          otherwise
//	Forming   what would be Minority (or a lost tie) before the first full
//	          view: the node has never seen ExpectedSize members up at
//	          once, or, with no expected size, its first join round and
//	          settle rounds are not over. A starting node does not decide
//	          before it knows. (A node started while fewer than
//	          ExpectedSize members are up stays Forming until they are.)
//
// Admission and removal: the replicated records. Whether a member counts
// is not this node's own verdict: it is a record replicated to every
// node (Standing, standing.go), one per member name, the greatest under
// one order: a record a member wrote beats the bootstrap's; then the
// higher incarnation; then the higher epoch (each re-admission of one
// incarnation after its removal takes the next); in one epoch the
// removal beats the admission. A member counts (Member.Counted) if its
// record admits its current incarnation; it is Member.Removed if its
// record removes it (or it has none), Member.Joining while its
// incarnation is not admitted (an admitted earlier incarnation of a
// restarted member then still counts, as a dead member). Every node
// adopts every record it hears of; the records travel as one state (all
// of them): by gossip on every change, in every push-pull, and both ways
// in every lease request of package placement (StandingState,
// MergeStanding), so a node holding a record holds every record its
// writer held when it wrote it. A member known only from the records is
// listed, dead, with no address.
//
//   - Bootstrap: a node that has no record a probe interval after its
//     first full view writes them from that view (every member it knows,
//     not left, admitted). Until then every member counts. A node that
//     joins a running cluster receives the records on its first
//     push-pull and waits to be admitted.
//   - Removal: a member dead in this node's view for longer than the
//     removal margin (Config.RemovalMargin; default
//     ProfileSettings.RemovalMargin, the profile's upper crash-detection
//     estimate, 1.5 s on fast, about 29 s on lan) is removed if the
//     removal gate says this side keeps running, asked with the view that
//     still counts it (default: Healthy or Partial; package placement
//     installs its split-brain policy, SetRemovalGate). The removal is a
//     record: every node that hears from this side adopts it, the removed
//     member included, and a node that joined after the crash never
//     removes the dead node itself. A side that is down never removes
//     anyone, so a minority cannot shrink its denominator into a majority,
//     while the side that keeps running stops counting its crashed nodes.
//   - Admission: a member alive whose incarnation is not admitted (it
//     joined, restarted, or is back after its removal) is admitted by a
//     node that counts itself and sees every member it counts (Akka's
//     convergence rule for Joining to Up; AdmissionGate, default: every
//     counted member up in the view, a restarted member's new incarnation
//     standing for its old one; package placement: its last lease round
//     reached every counted member over its own links, the newcomer
//     included, SetAdmissionGate). The admitter's side need not be up by
//     its policy: one node with a full view suffices, so admission never
//     waits for a removal that waits for the admission.
//
// A node that does not count itself is Forming while it is not admitted
// and Minority once removed; the policies of package placement say down
// for it. The two sides of a partition therefore agree on removal: the
// members a side removed learn it from the first record they get from
// that side, and until then they still count the members of that side,
// which they cannot reach, so they neither admit anyone nor make a
// majority (docs/REGISTRY.md, "Admission and removal", has the
// step-by-step argument and where it stops: concurrent admissions on both
// sides of a cut, a node restarted among nodes that have no records, a
// paused process). After a crash seen past the margin, an even split of
// the rest keeps exactly one side (deterministically, by the lowest live
// name); crashed nodes replaced under new names stop counting. A crash
// and a split within one margin leave both halves down (a three-way
// split, for all they know).
//
// Both sides of an even split know the same live names (the removals
// before the split are records both sides adopted), so at most one side
// holds the lowest and the tie-break is deterministic.
// The status is recomputed on every change of the view; PartitionChanged
// is emitted when the state (not merely the counts) changes.
//
// # Mode and readiness
//
// Mode is single_node when one member is up, multi_node when more are, and
// simulated whenever SetSimulated(true) was called (the simulator does). It
// is recomputed under the same lock as every change of the view, so it is
// never behind Members. ModeChanged is emitted and OnModeChange callbacks
// run on every change.
//
// Topology.FormedAt is when this node first saw another member up next to
// itself; while it has always been alone it equals StartedAt. Ready is true
// once the first join round is over and either another member is up or
// discovery found no peers (alone by design). WaitConverged waits for n
// alive members.
//
// # Profiles
//
// Timings per profile (ProfileSettings; estimates from memberlist's
// formulas, see ProfileSettings.CrashDetection and HealBound), for N = 5:
//
//	profile  probe interval/timeout  suspicion min–max  gossip  push-pull  rejoin  reclaim  crash detected  heal within
//	fast     200 ms / 100 ms         0.4–2.4 s (mult 2)  50 ms   5 s        0.5 s   0.5 s    ~0.8 s (≤1.5 s)  ~0.9 s
//	local    1 s / 200 ms            3–18 s (mult 3)     100 ms  15 s       2 s     5 s      ~4.7 s (≤23 s)   ~3.4 s
//	lan      1 s / 500 ms            4–24 s (mult 4)     200 ms  30 s       5 s     10 s     ~5.9 s (≤29 s)   ~6.8 s
//	wan      5 s / 3 s               30–180 s (mult 6)   500 ms  60 s       15 s    30 s     ~38 s (≤56 s)    ~22 s
//
// Local, LAN and WAN are memberlist's DefaultLocalConfig, DefaultLANConfig
// and DefaultWANConfig plus our rejoin interval and DeadNodeReclaimTime
// (memberlist's default of never reclaiming would keep a pod restarted on a
// new IP out of the cluster). Fast is for tests on loopback: Local with
// 200/100 ms probes, suspicion multiplier 2, 50 ms gossip, 5 s push-pull.
// The "≤" figure is the case without Lifeguard confirmations (the timer
// stays at its max) and the dead member probed last; neither figure counts
// Lifeguard's slower probing of a node that sees itself unhealthy (up to
// 8×). Measured on loopback (2 cores, fast profile, -race): 5 nodes
// started one after another converge 20–50 ms after the first start (8 ms
// in BenchmarkJoinConvergence5 without -race), a crash is seen by both
// survivors of 3 in 0.8–1.0 s, a 3|2 split is seen by all five in
// 1.2–2.8 s, and a heal is complete in 0.07–0.8 s.
package cluster
