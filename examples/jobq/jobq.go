// Package jobq is a small clustered job queue built only on Arsenal's
// public packages: the example of docs/NODE.md and docs/TESTING.md.
//
// The queue is a singleton of the distributed supervisor, registered
// cluster-wide as "jobq.queue": exactly one runs in the cluster (one per
// side of a partition that keeps running children, and only the majority
// does under keep-majority). Workers are distributed children too,
// placed across the nodes; each takes a job from the queue, runs it and
// reports it done. Every node runs a store, a local process that keeps a
// copy of the queue's state (submitted jobs, done jobs): the queue writes
// each submission to the stores of every node it reaches before it
// acknowledges it, and merges the stores' copies into its own (and its own
// into theirs) every 500 ms. A new queue, after its node died or left, or
// after a partition healed, starts from what the stores know.
//
// The guarantee, which the tests check: an acknowledged job is never
// lost while one node that stored it survives, and every job runs to
// completion at least once. A job can run twice only if it was in flight
// (taken, not yet reported done) when the queue moved or the worker's
// node died: at most one duplicate per worker per such fault.
package jobq

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/supervisor"
)

// Names and kinds.
const (
	QueueName  = "jobq.queue" // cluster-wide name of the queue
	StoreName  = "jobq.store" // local name of each node's store
	QueueKind  = "jobq.queue"
	WorkerKind = "jobq.worker"
	// Workers is the number of workers placed in the cluster.
	Workers = 3
	// Lease is how long a worker has to report a job done before the
	// queue offers it again.
	Lease = 5 * time.Second
)

// Submit adds a job (idempotent by ID). The reply is Accepted.
type Submit struct {
	ID      string
	Payload string
}

// Accepted acknowledges a Submit: the job is in the queue and in Stored
// stores (this node's and the others the queue reached).
type Accepted struct {
	ID     string
	Stored int
}

// Take asks for a job for Worker. The reply is a Job, or an empty Job
// when there is none.
type Take struct{ Worker string }

// Job is a job to run.
type Job struct {
	ID      string
	Payload string
}

// Done reports that Worker ran job ID. The reply is Ack.
type Done struct {
	ID     string
	Worker string
	Node   string
}

// Ack acknowledges a Done.
type Ack struct{ First bool }

// GetStats asks the queue for its counts. The reply is Stats.
type GetStats struct{}

// Stats are the queue's counts.
type Stats struct {
	Node       string   // the node running the queue
	Submitted  int      // distinct jobs
	Pending    int      // waiting for a worker
	InFlight   int      // taken, not done
	Done       int      // done at least once
	Duplicates int      // Done reports for a job already done by another worker: runs beyond the first
	DoneIDs    []string // sorted
}

// StoreState is a store's copy: job ID → payload, and done job ID → the
// worker whose report came first.
type StoreState struct {
	Submitted map[string]string
	Done      map[string]string
}

// clone copies st: a message to a local process is not copied, and the
// sender must not change what it sent.
func (st StoreState) clone() StoreState {
	out := StoreState{Submitted: make(map[string]string, len(st.Submitted)), Done: make(map[string]string, len(st.Done))}
	for k, v := range st.Submitted {
		out.Submitted[k] = v
	}
	for k, v := range st.Done {
		out.Done[k] = v
	}
	return out
}

// Snapshot asks a store for its StoreState.
type Snapshot struct{}

// App is the job queue as an Arsenal application. Its one setting of its
// own, --submit N (ARSENAL_JOBQ_SUBMIT), makes the node submit N demo jobs
// once the queue answers.
func App() arsenal.App {
	submit := new(string)
	*submit = "0"
	specs := []placement.ChildSpec{{ID: "queue", Kind: QueueKind, Name: QueueName}}
	for i := 1; i <= Workers; i++ {
		specs = append(specs, placement.ChildSpec{ID: fmt.Sprintf("worker-%d", i), Kind: WorkerKind})
	}
	return arsenal.App{
		Name:        "jobq",
		Description: "Run one node of a jobq cluster: a job queue singleton, workers placed across the nodes, and a store of the queue's state on every node.",
		Kinds: []arsenal.Kind{
			{Name: QueueKind, New: func([]byte) (process.Behaviour, error) { return &queue{}, nil }},
			{Name: WorkerKind, New: func([]byte) (process.Behaviour, error) { return &worker{}, nil }},
		},
		Messages: []arsenal.MessageType{
			arsenal.Message[Submit]("jobq.Submit"), arsenal.Message[Accepted]("jobq.Accepted"),
			arsenal.Message[Take]("jobq.Take"), arsenal.Message[Job]("jobq.Job"),
			arsenal.Message[Done]("jobq.Done"), arsenal.Message[Ack]("jobq.Ack"),
			arsenal.Message[GetStats]("jobq.GetStats"), arsenal.Message[Stats]("jobq.Stats"),
			arsenal.Message[StoreState]("jobq.StoreState"), arsenal.Message[Snapshot]("jobq.Snapshot"),
		},
		Trees: []arsenal.Tree{{Name: "jobq.stores", Spec: func(*arsenal.Node) supervisor.Spec {
			return supervisor.Spec{Children: []supervisor.ChildSpec{
				{ID: "store", Name: StoreName, Start: func() process.Behaviour { return &store{} }},
			}}
		}}},
		Singletons: specs,
		Flags: func(f *arsenal.Flags) {
			submit = f.String("submit", "ARSENAL_JOBQ_SUBMIT", "0", "submit this many demo jobs once the queue answers")
		},
		Check: func() error {
			if n, err := strconv.Atoi(*submit); err != nil || n < 0 {
				return fmt.Errorf("--submit %q: want a whole number", *submit)
			}
			return nil
		},
		Start: func(_ context.Context, n *arsenal.Node) error {
			count, _ := strconv.Atoi(*submit)
			if count > 0 {
				go submitDemoJobs(n, count)
			}
			return nil
		},
	}
}

// submitDemoJobs submits count jobs through n, each retried until the
// queue acknowledges it, and stops early when the node stops.
func submitDemoJobs(n *arsenal.Node, count int) {
	for k := 0; k < count; k++ {
		id := fmt.Sprintf("%s-%d", n.Name(), k)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := n.Registry().Call(ctx, QueueName, Submit{ID: id, Payload: "demo"})
			cancel()
			if err == nil {
				break
			}
			select {
			case <-n.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	n.Logger().Info("jobq: demo jobs submitted", "count", count)
}

// ---- store: one per node ----

type store struct {
	process.Server
	st StoreState
}

func (s *store) Init(*process.Proc) error {
	s.st = StoreState{Submitted: map[string]string{}, Done: map[string]string{}}
	return nil
}

func (s *store) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) {
	switch r := req.(type) {
	case StoreState:
		s.merge(r)
		return Ack{}, nil
	case Snapshot:
		return s.st.clone(), nil
	}
	return nil, fmt.Errorf("jobq store: unexpected request %T", req)
}

func (s *store) HandleInfo(_ *process.Proc, msg any) error {
	if r, ok := msg.(StoreState); ok {
		s.merge(r)
	}
	return nil
}

func (s *store) merge(r StoreState) {
	for id, p := range r.Submitted {
		s.st.Submitted[id] = p
	}
	for id, w := range r.Done {
		if _, ok := s.st.Done[id]; !ok {
			s.st.Done[id] = w
		}
	}
}

// ---- queue: the singleton ----

type queue struct {
	process.Server
	n          *arsenal.Node
	st         StoreState
	pending    []string             // FIFO of job IDs
	inFlight   map[string]time.Time // job → lease end
	duplicates int
	last       logged
}

type syncTick struct{}

// logged is what the queue last logged, so that it logs changes only.
type logged struct{ submitted, done, duplicates int }

func (q *queue) Init(p *process.Proc) error {
	q.n = arsenal.From(p)
	if q.n == nil {
		return errors.New("jobq: the queue must run on an Arsenal node")
	}
	q.st = StoreState{Submitted: map[string]string{}, Done: map[string]string{}}
	q.inFlight = map[string]time.Time{}
	q.sync(p) // start from what the stores know
	p.SendAfter(p.Self(), syncTick{}, 500*time.Millisecond)
	return nil
}

// stores are the stores of the nodes that are up.
func (q *queue) stores(ctx context.Context) []process.PID {
	var out []process.PID
	for _, m := range q.n.Cluster().Members() {
		if !m.Status.Up() {
			continue
		}
		if m.Name == q.n.Name() {
			if pid, ok := q.n.Runtime().Whereis(StoreName); ok {
				out = append(out, pid)
			}
			continue
		}
		if pid, err := q.n.Whereis(ctx, m.Name, StoreName); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// sync merges every reachable store's copy into the queue, and sends the
// merged state back to them.
func (q *queue) sync(p *process.Proc) {
	ctx, cancel := context.WithTimeout(p.Context(), time.Second)
	defer cancel()
	pids := q.stores(ctx)
	for _, pid := range pids {
		v, err := p.Call(ctx, pid, Snapshot{})
		if st, ok := v.(StoreState); err == nil && ok {
			q.merge(st)
		}
	}
	for _, pid := range pids {
		p.Send(pid, q.st.clone())
	}
}

func (q *queue) merge(st StoreState) {
	for id, w := range st.Done {
		if _, done := q.st.Done[id]; !done {
			q.st.Done[id] = w
			delete(q.inFlight, id)
		}
	}
	for id, payload := range st.Submitted {
		if _, ok := q.st.Submitted[id]; !ok {
			q.st.Submitted[id] = payload
			if _, done := q.st.Done[id]; !done {
				q.pending = append(q.pending, id)
			}
		}
	}
}

func (q *queue) HandleInfo(p *process.Proc, msg any) error {
	if _, ok := msg.(syncTick); ok {
		q.sync(p)
		now := time.Now()
		for id, end := range q.inFlight { // expired leases go back in the queue
			if now.After(end) {
				delete(q.inFlight, id)
				q.pending = append(q.pending, id)
			}
		}
		if now := (logged{len(q.st.Submitted), len(q.st.Done), q.duplicates}); now != q.last {
			q.last = now
			q.n.Logger().Info("jobq: queue", "submitted", now.submitted, "done", now.done, "in_flight", len(q.inFlight), "duplicates", now.duplicates)
		}
		p.SendAfter(p.Self(), syncTick{}, 500*time.Millisecond)
	}
	return nil
}

func (q *queue) HandleCall(p *process.Proc, _ process.From, req any) (any, error) {
	switch r := req.(type) {
	case Submit:
		if r.ID == "" {
			return nil, errors.New("jobq: a job needs an ID")
		}
		if _, known := q.st.Submitted[r.ID]; !known {
			q.st.Submitted[r.ID] = r.Payload
			q.pending = append(q.pending, r.ID)
		}
		// Acknowledge only once the stores have it.
		ctx, cancel := context.WithTimeout(p.Context(), time.Second)
		defer cancel()
		stored := 0
		one := StoreState{Submitted: map[string]string{r.ID: r.Payload}, Done: map[string]string{}}
		for _, pid := range q.stores(ctx) {
			if _, err := p.Call(ctx, pid, one); err == nil {
				stored++
			}
		}
		return Accepted{ID: r.ID, Stored: stored}, nil
	case Take:
		for len(q.pending) > 0 {
			id := q.pending[0]
			q.pending = q.pending[1:]
			if _, done := q.st.Done[id]; done {
				continue
			}
			if _, taken := q.inFlight[id]; taken {
				continue
			}
			q.inFlight[id] = time.Now().Add(Lease)
			return Job{ID: id, Payload: q.st.Submitted[id]}, nil
		}
		return Job{}, nil
	case Done:
		delete(q.inFlight, r.ID)
		if by, done := q.st.Done[r.ID]; done {
			if by != r.Worker {
				q.duplicates++ // another worker ran it too
			} // else: the same report again (its ack was lost)
			return Ack{First: false}, nil
		}
		q.st.Done[r.ID] = r.Worker
		ctx, cancel := context.WithTimeout(p.Context(), time.Second)
		defer cancel()
		one := StoreState{Submitted: map[string]string{}, Done: map[string]string{r.ID: r.Worker}}
		for _, pid := range q.stores(ctx) {
			p.Send(pid, one)
		}
		return Ack{First: true}, nil
	case GetStats:
		s := Stats{Node: p.Runtime().Node(), Submitted: len(q.st.Submitted), InFlight: len(q.inFlight),
			Done: len(q.st.Done), Duplicates: q.duplicates}
		for _, id := range q.pending {
			if _, done := q.st.Done[id]; !done {
				s.Pending++
			}
		}
		for id := range q.st.Done {
			s.DoneIDs = append(s.DoneIDs, id)
		}
		sort.Strings(s.DoneIDs)
		return s, nil
	}
	return nil, fmt.Errorf("jobq queue: unexpected request %T", req)
}

// ---- worker: placed across the nodes ----

type worker struct {
	process.Server
	n      *arsenal.Node
	unsent *Done // a Done the queue has not acknowledged yet
}

type workTick struct{}

func (w *worker) Init(p *process.Proc) error {
	w.n = arsenal.From(p)
	if w.n == nil {
		return errors.New("jobq: a worker must run on an Arsenal node")
	}
	p.SendAfter(p.Self(), workTick{}, 50*time.Millisecond)
	return nil
}

func (w *worker) HandleInfo(p *process.Proc, msg any) error {
	if _, ok := msg.(workTick); !ok {
		return nil
	}
	next := 20 * time.Millisecond
	if !w.step(p) {
		next = 200 * time.Millisecond // no job, or the queue is away
	}
	p.SendAfter(p.Self(), workTick{}, next)
	return nil
}

// step reports the last job if it is not acknowledged yet, else takes and
// runs one job; it reports whether there was work.
func (w *worker) step(p *process.Proc) bool {
	ctx, cancel := context.WithTimeout(p.Context(), 3*time.Second)
	defer cancel()
	if w.unsent != nil {
		if _, err := w.n.Registry().Call(ctx, QueueName, *w.unsent); err != nil {
			return false
		}
		w.unsent = nil
	}
	v, err := w.n.Registry().Call(ctx, QueueName, Take{Worker: p.Self().String()})
	job, ok := v.(Job)
	if err != nil || !ok || job.ID == "" {
		return false
	}
	run(job)
	w.unsent = &Done{ID: job.ID, Worker: p.Self().String(), Node: p.Runtime().Node()}
	if _, err := w.n.Registry().Call(ctx, QueueName, *w.unsent); err == nil {
		w.unsent = nil
	}
	return true
}

// run runs a job: here, 10 ms of pretend work.
func run(Job) { time.Sleep(10 * time.Millisecond) }
