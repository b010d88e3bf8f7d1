package ops

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFeed is a Stream that sends one event with an id, then waits for
// its context: it never ends by itself, like the cluster event feed.
func waitFeed(opened *sync.WaitGroup) Operation {
	return Operation{Name: "t.forever", Category: "cluster", Summary: "never ends by itself", Method: "GET",
		Path: "/api/v1/forever", Events: map[string]any{"hello": map[string]any{}},
		Stream: func(ctx context.Context, req *Request, w StreamWriter) error {
			err := w.SendID("7", "hello", map[string]any{"last": req.LastEventID})
			opened.Done()
			if err != nil {
				return nil
			}
			<-ctx.Done()
			return nil
		}}
}

// With 100 feeds open, http.Server.Shutdown returns without waiting for
// its context: each feed gets a final shutdown event and its handler
// returns.
func TestShutdownEndsEveryStream(t *testing.T) {
	const feeds = 100
	var opened sync.WaitGroup
	opened.Add(feeds)
	reg := NewRegistry()
	reg.MustRegister(waitFeed(&opened))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: reg.Handler(ServerConfig{OpenReads: true, Heartbeat: time.Hour})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: feeds}}
	defer client.CloseIdleConnections()
	type result struct {
		lines []string
		err   error
	}
	results := make(chan result, feeds)
	for i := range feeds {
		go func() {
			req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/api/v1/forever", nil)
			if i == 0 {
				req.Header.Set("Last-Event-ID", "41")
			}
			resp, err := client.Do(req)
			if err != nil {
				opened.Done()
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			var lines []string
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if sc.Text() != "" {
					lines = append(lines, sc.Text())
				}
			}
			results <- result{lines: lines, err: sc.Err()}
		}()
	}
	opened.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with %d open feeds: %v (the feeds held the server)", feeds, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	resumed := 0
	for range feeds {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		want := []string{"id: 7", "event: hello", `data: {"last":""}`, "event: shutdown", `data: {"reason":"server_shutdown"}`}
		if r.lines[2] == `data: {"last":"41"}` {
			resumed++
			want[2] = r.lines[2]
		}
		if strings.Join(r.lines, "\n") != strings.Join(want, "\n") {
			t.Fatalf("a feed read:\n%s\nwant:\n%s", strings.Join(r.lines, "\n"), strings.Join(want, "\n"))
		}
	}
	if resumed != 1 {
		t.Fatalf("%d feeds saw Last-Event-ID 41, want 1", resumed)
	}
}

func BenchmarkShutdownWithFeeds(b *testing.B) {
	for _, feeds := range []int{0, 100} {
		b.Run(map[int]string{0: "none", 100: "100feeds"}[feeds], func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				var opened sync.WaitGroup
				opened.Add(feeds)
				reg := NewRegistry()
				reg.MustRegister(waitFeed(&opened))
				ln, _ := net.Listen("tcp", "127.0.0.1:0")
				srv := &http.Server{Handler: reg.Handler(ServerConfig{OpenReads: true, Heartbeat: time.Hour})}
				go srv.Serve(ln)
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: feeds}}
				var done sync.WaitGroup
				for range feeds {
					done.Add(1)
					go func() {
						defer done.Done()
						resp, err := client.Get("http://" + ln.Addr().String() + "/api/v1/forever")
						if err != nil {
							opened.Done()
							return
						}
						sc := bufio.NewScanner(resp.Body)
						for sc.Scan() {
						}
						resp.Body.Close()
					}()
				}
				opened.Wait()
				b.StartTimer()
				if err := srv.Shutdown(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				done.Wait()
				client.CloseIdleConnections()
				b.StartTimer()
			}
		})
	}
}
