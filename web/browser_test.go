package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color/palette"
	"image/draw"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/arsenal-go/arsenal/clustertest"
	"github.com/arsenal-go/arsenal/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }

// chromium finds Debian's Chromium (or another Chrome) on PATH; the test
// never downloads a browser.
func chromium(t testing.TB) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium binary on PATH (.ci/run installs Debian's chromium with apt-get)")
	return ""
}

// browser is one headless Chromium tab at 1280 × 800.
type browser struct {
	t   testing.TB
	ctx context.Context
}

func newBrowser(t testing.TB, width, height int) *browser {
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(width, height),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	return &browser{t: t, ctx: ctx}
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, testutil.Scale(60*time.Second))
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

func (b *browser) fail(what string, err error) {
	b.t.Helper()
	body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById('main') ? document.getElementById('main').innerText.slice(0, 3000) : document.body.innerText`))
	b.t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
}

// until waits for a JavaScript expression to be true, up to d.
func (b *browser) until(what, expr string, d time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, testutil.Scale(d)+5*time.Second)
	defer cancel()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(testutil.Scale(d)), chromedp.WithPollingInterval(50*time.Millisecond)))
		// A poll that began while the page was being replaced lost its
		// JavaScript context: poll again in the new one.
		if err != nil && strings.Contains(err.Error(), "Cannot find context") && ctx.Err() == nil {
			continue
		}
		if err != nil {
			b.fail(what, err)
		}
		return
	}
}

// eval evaluates a JavaScript expression into out.
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, testutil.Scale(30*time.Second))
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(v, out); err != nil {
			b.fail("decode "+expr, err)
		}
	}
}

// hash moves to another view without reloading the page.
func (b *browser) hash(h string) {
	b.t.Helper()
	b.eval(fmt.Sprintf("location.hash = %s", js(h)), nil)
}

// shot writes a screenshot of the window to $ARSENAL_DASHBOARD_SHOTS/name
// (docs/img when the docs are refreshed), if that is set.
func (b *browser) shot(name string) {
	dir := os.Getenv("ARSENAL_DASHBOARD_SHOTS")
	if dir == "" {
		return
	}
	raw, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot", err)
	}
	// 256 colours (Plan 9's palette) keep the files small and the text sharp.
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		b.t.Fatal(err)
	}
	pal := image.NewPaletted(img.Bounds(), palette.Plan9)
	draw.Draw(pal, pal.Rect, img, img.Bounds().Min, draw.Src)
	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, pal); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), out.Bytes(), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// readable fails the test when a text on the page contrasts less than
// 4.5 : 1 (WCAG AA for normal text) with the background it is drawn on.
// Disabled controls are exempt, as in WCAG.
func (b *browser) readable(page string) {
	b.t.Helper()
	var low []string
	b.eval(contrastJS, &low)
	if len(low) > 0 {
		b.t.Fatalf("the %s page has text below 4.5 : 1 contrast:\n%s", page, strings.Join(low, "\n"))
	}
}

const contrastJS = `(() => {
  const rgb = (s) => { const m = s.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bg = (e) => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.a === 1) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const low = [];
  for (const e of document.querySelectorAll('body *')) {
    if (e.closest(':disabled') || e.closest('svg') || !e.getClientRects().length) continue;
    if (![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const a = lum(rgb(getComputedStyle(e).color)), b = lum(bg(e));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(e.tagName + ' ' + JSON.stringify(e.textContent.trim().slice(0, 40)) + ' ' + ratio.toFixed(2) + ' : 1');
  }
  return low;
})()`

func js(s string) string { q, _ := json.Marshal(s); return string(q) }

// apiTotal asks the API itself for the total of a process query.
func apiList(t *testing.T, base, query string) (total int, pids []string) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/cluster/processes?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Total     int
			Processes []struct{ PID string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("processes?%s: %d %v", query, resp.StatusCode, err)
	}
	for _, p := range r.Data.Processes {
		pids = append(pids, p.PID)
	}
	return r.Data.Total, pids
}

func TestDashboardInABrowser(t *testing.T) {
	chromium(t)
	c := clustertest.Start(t, 3, clustertest.Options{})
	a, b, x := c.Node(0), c.Node(1), c.Node(2)
	base := a.URL()

	// Real data: 60 echo servers on a (two pages of 50), a supervisor on
	// b, and names with markup in them.
	for i := 0; i < 60; i++ {
		a.MustDo("spawn", map[string]any{"kind": "echo"}, nil)
	}
	const evil = `<script>window.__xss=1</script>`
	const evilImg = `<img src=x onerror="window.__xss=2">`
	var sup string
	b.MustDo("spawn", map[string]any{"kind": "echo", "name": evil}, nil)
	b.MustDo("spawn", map[string]any{"kind": "echo", "name": evilImg}, nil)
	b.MustDo("spawn", map[string]any{"kind": "supervisor", "name": "dash-sup"}, &sup)

	br := newBrowser(t, 1280, 800)

	// Cluster: three nodes, a full matrix of alive, the feed connected.
	br.run("open /", chromedp.Navigate(base+"/"))
	br.until("the matrix shows 3 × 3 alive",
		`document.querySelectorAll('table[data-test=matrix] td[data-target].alive').length === 9`, 30*time.Second)
	var rows int
	br.eval(`document.querySelectorAll('table[data-test=nodes] tbody tr').length`, &rows)
	if rows != 3 {
		t.Fatalf("the nodes table has %d rows, want 3", rows)
	}
	br.until("the feed delivers its snapshot with an id",
		`[...document.querySelectorAll('[data-test=events] li')].some(li => li.dataset.type === 'topology' && li.dataset.id !== '')`, 20*time.Second)
	var mode string
	br.eval(`document.querySelector('[data-test=mode]').textContent`, &mode)
	if mode != "multi node" {
		t.Fatalf("mode %q, want multi node", mode)
	}
	// The health history: one strip per node from the node's buffer (the
	// first snapshot may predate the joins: wait for one with all three).
	br.until("a health history strip with a bar for each node", fmt.Sprintf(`[%s, %s, %s].every(n => { const r = document.querySelector('[data-history="' + n + '"]'); return r !== null && r.querySelectorAll('rect').length > 0; }) && document.querySelector('[data-history=overall] rect') !== null`,
		js(a.Name), js(b.Name), js(x.Name)), 40*time.Second)
	br.readable("cluster")
	br.shot("cluster.png")
	// One click from a node's process count to its processes.
	// (clicked from script: the table may be re-rendered by a refresh between
	// a mouse click's lookup and its press)
	// The link is there once b's count is (its facts may come a refresh
	// later): the poll clicks it in the evaluation that finds it.
	br.until("click b's process count", `(() => { const a = document.querySelector('tr[data-node="`+b.Name+`"] [data-test=procs] a'); if (a) a.click(); return a !== null; })()`, 20*time.Second)
	btotal, _ := apiList(t, base, "node="+url.QueryEscape(b.Name)+"&limit=1")
	br.until("b's processes", fmt.Sprintf(`location.hash.startsWith('#/processes') && document.querySelector('select[name=node]').value === %s && document.querySelector('[data-test=summary]').dataset.total === '%d'`, js(b.Name), btotal), 20*time.Second)

	// Processes: totals agree with the API, filters and paging.
	total, _ := apiList(t, base, "limit=1")
	br.hash("#/processes?limit=50")
	br.until("the process list loads", `document.querySelector('[data-test=summary]').dataset.total !== undefined`, 20*time.Second)
	var shown, got int
	br.eval(`Number(document.querySelector('[data-test=summary]').dataset.total)`, &got)
	br.eval(`document.querySelectorAll('table[data-test=processes] tbody tr').length`, &shown)
	if got != total || shown != 50 {
		t.Fatalf("the page shows %d of %d, the API says %d in all (want 50 of %d)", shown, got, total, total)
	}
	_, page2 := apiList(t, base, "limit=50&offset=50")
	br.eval(`document.querySelector('[data-test=next]').click()`, nil) // the pager is re-rendered on each refresh
	br.until("page 2", `location.hash.includes('offset=50') && document.querySelector('[data-test=summary]').textContent.startsWith('Showing 51')`, 20*time.Second)
	var pids []string
	br.until("page 2 rows", fmt.Sprintf(`document.querySelectorAll('table[data-test=processes] tbody tr').length === %d`, len(page2)), 20*time.Second)
	br.eval(`[...document.querySelectorAll('table[data-test=processes] tbody tr')].map(r => r.dataset.pid)`, &pids)
	if strings.Join(pids, ",") != strings.Join(page2, ",") {
		t.Fatalf("page 2 in the browser:\n%v\nfrom the API:\n%v", pids, page2)
	}
	// Filter through the form: node b, behaviour echo, sorted by mailbox.
	br.until("the node list is filled", fmt.Sprintf(`[...document.querySelectorAll('select[name=node] option')].some(o => o.value === %s)`, js(b.Name)), 20*time.Second)
	br.run("filter by node and behaviour",
		chromedp.SetValue(chromedp.CSS(`select[name=node]`), b.Name),
		chromedp.SetValue(chromedp.CSS(`input[name=behaviour]`), "echo"),
		chromedp.SetValue(chromedp.CSS(`select[name=sort]`), "mailbox"),
		chromedp.Click(chromedp.CSS(`form[data-test=filters] button[type=submit]`)))
	ftotal, fpids := apiList(t, base, "node="+url.QueryEscape(b.Name)+"&behaviour=echo&sort=mailbox&limit=50")
	br.until("the filtered list", fmt.Sprintf(`location.hash.includes('sort=mailbox') && document.querySelector('[data-test=summary]').dataset.total === '%d' && document.querySelectorAll('table[data-test=processes] tbody tr').length === %d`, ftotal, len(fpids)), 20*time.Second)
	if ftotal < 3 {
		t.Fatalf("%d echo servers on %s, want at least 3", ftotal, b.Name)
	}
	br.eval(`[...document.querySelectorAll('table[data-test=processes] tbody tr')].map(r => r.dataset.pid)`, &pids)
	if strings.Join(pids, ",") != strings.Join(fpids, ",") {
		t.Fatalf("filtered rows in the browser %v, from the API %v", pids, fpids)
	}
	br.readable("processes")
	br.shot("processes.png")

	// Keyboard: the list is one tab stop (a grid); ↓ End Home move the row
	// focus, a refresh keeps it on the same process, Enter opens it.
	const procRows = `[...document.querySelectorAll('table[data-test=processes] tbody tr')]`
	br.eval(`document.querySelector('table[data-test=processes] tbody tr[tabindex="0"]').focus()`, nil)
	br.until("the grid, its first row focused, one tab stop", `document.querySelector('table[data-test=processes]').getAttribute('role') === 'grid' && document.activeElement === `+procRows+`[0] && document.querySelectorAll('table[data-test=processes] [tabindex="0"]').length === 1 && document.querySelectorAll('table[data-test=processes] a[tabindex="-1"]').length === `+procRows+`.length`, 10*time.Second)
	for _, k := range []struct{ key, row, what string }{
		{kb.ArrowDown, "[1]", "↓ moves to the second row"},
		{kb.End, ".at(-1)", "End moves to the last row"},
		{kb.Home, "[0]", "Home moves to the first row"},
		{kb.ArrowDown, "[1]", "↓ again"},
	} {
		br.run(k.what, chromedp.KeyEvent(k.key))
		br.until(k.what, `document.activeElement === `+procRows+k.row, 10*time.Second)
	}
	var focusedPID string
	br.eval(`window.__list = document.querySelector('table[data-test=processes]'); document.activeElement.dataset.pid`, &focusedPID)
	br.until("a refresh re-renders the list and the focus stays on the same process", fmt.Sprintf(`document.querySelector('table[data-test=processes]') !== window.__list && document.activeElement.dataset.pid === %s`, js(focusedPID)), 20*time.Second)
	br.run("Enter", chromedp.KeyEvent("\r"))
	br.until("Enter opens the focused process", fmt.Sprintf(`location.hash === '#/process/' + encodeURIComponent(%s) && document.querySelector('[data-field=status]') !== null`, js(focusedPID)), 20*time.Second)

	// Markup in a name is text: no script or img element, no handler run.
	br.hash("#/processes?name=window")
	br.until("the names with markup", `document.querySelectorAll('table[data-test=processes] tbody tr').length === 2`, 20*time.Second)
	var names []string
	br.eval(`[...document.querySelectorAll('td.pname')].map(td => td.textContent).sort()`, &names)
	if len(names) != 2 || names[0] != evilImg || names[1] != evil {
		t.Fatalf("names rendered as %q, want the text %q and %q", names, evil, evilImg)
	}
	var injected int
	br.eval(`document.querySelectorAll('main script, main img').length + (window.__xss || 0)`, &injected)
	if injected != 0 {
		t.Fatalf("markup from a process name became elements or ran (%d)", injected)
	}

	// Process page: log in, cancel a kill (Cancel is the default), then
	// kill a supervised child and see its supervisor restart it.
	var child string
	_, sp := apiList(t, base, "node="+url.QueryEscape(b.Name)+"&behaviour=echo&limit=100")
	for _, p := range sp {
		if info := processInfo(t, base, p); info.Parent == sup {
			child = p
		}
	}
	if child == "" {
		t.Fatalf("no child of %s among the echo servers of %s", sup, b.Name)
	}
	br.run("log in", chromedp.SendKeys(chromedp.ID(`#token`), c.Token()), chromedp.Click(chromedp.ID(`#login-btn`)))
	br.hash("#/process/" + url.PathEscape(child))
	br.until("the process page with its supervisor", fmt.Sprintf(`document.querySelector('[data-field=parent]') && document.querySelector('[data-field=parent]').textContent === %s && document.querySelector('[data-test=restart]') && !document.querySelector('[data-test=restart]').disabled`, js(sup)), 20*time.Second)
	br.run("ask to kill", chromedp.Click(chromedp.CSS(`[data-test=kill]`)))
	br.until("the confirmation, Cancel focused", `document.getElementById('confirm').open && document.activeElement.id === 'confirm-cancel' && document.getElementById('confirm-text').textContent.includes('will restart it')`, 10*time.Second)
	br.readable("process-confirm")
	br.shot("process-confirm.png")
	br.run("cancel", chromedp.KeyEvent("\r"))
	br.until("cancelled", `!document.getElementById('confirm').open && document.querySelector('[data-test=action-result]').textContent === 'Kill cancelled.'`, 10*time.Second)
	if processInfo(t, base, child).PID != child {
		t.Fatalf("the cancelled kill killed %s", child)
	}
	br.run("kill", chromedp.Click(chromedp.CSS(`[data-test=kill]`)))
	br.until("confirmation", `document.getElementById('confirm').open`, 10*time.Second)
	br.run("confirm", chromedp.Click(chromedp.ID(`#confirm-ok`)))
	br.until("the process is gone and its supervisor started a new one, seen live",
		fmt.Sprintf(`document.querySelector('[data-test=gone]') !== null && [...document.querySelectorAll('[data-test=child-pid]')].some(td => td.textContent !== '' && td.textContent !== %s)`, js(child)), 30*time.Second)
	var newChild string
	br.eval(`document.querySelector('[data-test=child-pid]').textContent`, &newChild)
	if got := processInfo(t, base, newChild); got.PID != newChild || got.Parent != sup {
		t.Fatalf("the restarted child %s: %+v", newChild, got)
	}
	br.readable("process-killed")
	br.shot("process-killed.png")
	// The restarted child sorts first by restarts on its node, as in the API.
	_, byRestarts := apiList(t, base, "node="+url.QueryEscape(b.Name)+"&sort=restarts&limit=50")
	if len(byRestarts) == 0 || byRestarts[0] != newChild {
		t.Fatalf("sorted by restarts the API lists %v first, want the restarted child %s", byRestarts, newChild)
	}
	br.hash("#/processes?sort=restarts&limit=50&node=" + url.QueryEscape(b.Name))
	br.until("sorted by restarts", fmt.Sprintf(`location.hash.includes('sort=restarts') && (document.querySelector('table[data-test=processes] tbody tr') || {dataset: {}}).dataset.pid === %s && document.querySelector('select[name=sort]').value === 'restarts'`, js(newChild)), 20*time.Second)

	// Live trace of the new child: start, a message arrives, stop.
	br.hash("#/process/" + url.PathEscape(newChild))
	br.until("the new child's page", `document.querySelector('[data-test=trace-start]') && !document.querySelector('[data-test=trace-start]').disabled`, 20*time.Second)
	br.run("start a trace", chromedp.Click(chromedp.CSS(`[data-test=trace-start]`)))
	br.until("trace running", `document.querySelector('[data-test=trace-count]') !== null`, 20*time.Second)
	c.Send(1, newChild, "hello-from-the-test")
	br.until("the traced message arrives", `[...document.querySelectorAll('#trace-events td')].some(td => td.textContent.includes('hello-from-the-test'))`, 20*time.Second)
	br.readable("process-trace")
	br.shot("process-trace.png")
	br.run("stop the trace", chromedp.Click(chromedp.CSS(`[data-test=trace-stop]`)))
	br.until("trace stopped", `document.querySelector('[data-test=trace-count]').textContent.includes('stopped')`, 20*time.Second)

	// Supervision trees and registry/placement pages.
	br.hash("#/trees")
	supItem := fmt.Sprintf(`document.querySelector('[role=tree] [role=treeitem][data-sup=%s]')`, js(sup))
	br.until("the trees", supItem+` !== null`, 20*time.Second)
	br.readable("trees")
	br.shot("trees.png")
	// Keyboard: ← collapses, → expands, → again goes to the first child,
	// ↑ back to the parent, ↓ to the child, Enter opens the child's page;
	// a refresh keeps what was collapsed and where the focus was.
	br.eval(supItem+`.focus()`, nil)
	br.run("←", chromedp.KeyEvent(kb.ArrowLeft))
	br.until("← collapses the supervisor", supItem+`.getAttribute('aria-expanded') === 'false' && document.activeElement === `+supItem+` && `+supItem+`.querySelector('[role=treeitem]').offsetParent === null`, 10*time.Second)
	br.eval(`window.__tree = `+supItem, nil)
	br.until("a refresh keeps it collapsed and focused", supItem+` !== window.__tree && `+supItem+`.getAttribute('aria-expanded') === 'false' && document.activeElement === `+supItem, 30*time.Second)
	br.run("→", chromedp.KeyEvent(kb.ArrowRight))
	br.until("→ expands it", supItem+`.getAttribute('aria-expanded') === 'true' && `+supItem+`.querySelector('[role=treeitem]').offsetParent !== null`, 10*time.Second)
	for _, k := range []struct{ key, target, what string }{
		{kb.ArrowRight, supItem + `.querySelector('[role=treeitem]')`, "→ moves to the first child"},
		{kb.ArrowUp, supItem, "↑ moves back to the supervisor"},
		{kb.ArrowDown, supItem + `.querySelector('[role=treeitem]')`, "↓ moves to the child"},
	} {
		br.run(k.what, chromedp.KeyEvent(k.key))
		br.until(k.what, `document.activeElement === `+k.target, 10*time.Second)
	}
	var treeChild string
	br.eval(`document.activeElement.dataset.pid`, &treeChild)
	br.run("Enter on the child", chromedp.KeyEvent("\r"))
	br.until("Enter opens the child's page", fmt.Sprintf(`%s !== '' && location.hash === '#/process/' + encodeURIComponent(%s) && document.querySelector('[data-field=parent]') !== null && document.querySelector('[data-field=parent]').textContent === %s`, js(treeChild), js(treeChild), js(sup)), 20*time.Second)
	// A distributed child registered under a name with markup in it.
	const childName = `dash-<b>child</b>`
	c.Eventually(testutil.Scale(30*time.Second), func() bool {
		req, _ := http.NewRequest("POST", base+"/api/v1/cluster/placement/children",
			strings.NewReader(`{"id":"dash-child","kind":"echo","name":`+js(childName)+`}`))
		req.Header.Set("Authorization", "Bearer "+c.Token())
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "the placement did not take a child")
	br.hash("#/registry")
	br.until("the split-brain decision of each node", `document.querySelectorAll('table[data-test=sides] tbody tr').length === 3`, 20*time.Second)
	br.until("the child with its owner and its name, as text", fmt.Sprintf(`[...document.querySelectorAll('table[data-test=children] tbody td')].some(td => td.textContent === 'dash-child') && [...document.querySelectorAll('td.rname')].some(td => td.textContent === %s) && document.querySelectorAll('main b').length === 0`, js(childName)), 30*time.Second)
	br.readable("registry")
	br.shot("registry.png")

	// Without a token, in a narrow window: the read views open (the API
	// opens reads on loopback), the actions are off and say why, the page
	// does not scroll sideways, a protected process says why it is.
	ro := newBrowser(t, 420, 800)
	ro.run("open the processes page", chromedp.Navigate(base+"/ui/#/processes?limit=50"))
	ro.until("the list, read-only", `document.querySelector('[data-test=summary]').dataset.total !== undefined && document.getElementById('who').textContent.startsWith('no token')`, 20*time.Second)
	narrow := func(page string) {
		t.Helper()
		var wide bool
		ro.eval(`document.documentElement.scrollWidth > window.innerWidth`, &wide)
		if wide {
			t.Fatalf("the %s page scrolls sideways in a narrow window", page)
		}
	}
	narrow("processes")
	ro.readable("processes-narrow")
	ro.shot("processes-narrow.png")
	ro.run("focus the first process", chromedp.Focus(chromedp.CSS(`table[data-test=processes] tbody a`)), chromedp.KeyEvent("\r"))
	ro.until("Enter on a process link opens its page", `location.hash.startsWith('#/process/') && document.querySelector('[data-field=status]') !== null`, 20*time.Second)
	narrow("process")
	ro.hash("#/trees")
	ro.until("the trees, narrow", supItem+` !== null`, 20*time.Second)
	narrow("trees")
	ro.hash("#/registry")
	ro.until("the registry, narrow", `document.querySelectorAll('table[data-test=sides] tbody tr').length === 3`, 20*time.Second)
	narrow("registry")
	ro.hash("#/process/" + url.PathEscape(sup))
	ro.until("the supervisor's page, protected and read-only", `document.querySelector('[data-test=protected]') !== null && document.querySelector('[data-test=kill]').disabled && document.querySelector('[data-test=trace-start]').disabled`, 20*time.Second)
	// With a viewer's token the buttons are there, but a kill is the
	// operator's: the node refuses it, the page says why, the process lives.
	ro.run("log in as a viewer", chromedp.SendKeys(chromedp.ID(`#token`), c.Token()+"-viewer"), chromedp.Click(chromedp.ID(`#login-btn`)))
	ro.hash("#/process/" + url.PathEscape(newChild))
	ro.until("the child's page with a token", `document.querySelector('[data-test=kill]') !== null && !document.querySelector('[data-test=kill]').disabled`, 20*time.Second)
	ro.run("ask to kill", chromedp.Click(chromedp.CSS(`[data-test=kill]`)))
	ro.until("the confirmation", `document.getElementById('confirm').open`, 10*time.Second)
	ro.run("confirm", chromedp.Click(chromedp.ID(`#confirm-ok`)))
	ro.until("the node refuses a viewer's kill, and the page says so", `document.querySelector('[data-test=action-result]').textContent.includes('kill failed: HTTP 403')`, 20*time.Second)
	if processInfo(t, base, newChild).PID != newChild {
		t.Fatalf("a viewer's kill killed %s", newChild)
	}

	// A node killed with SIGKILL turns dead in the matrix without a reload.
	br.hash("#/cluster")
	br.until("the matrix again", `document.querySelectorAll('table[data-test=matrix] td[data-target].alive').length === 9`, 30*time.Second)

	// A partition, x alone on one side: each side's dashboard shows its own
	// view and its split-brain decision, and names the other side as not
	// answering; after the heal the matrix is whole again, without a reload.
	ro.run("open x's registry page", chromedp.Navigate(x.URL()+"/ui/#/registry"))
	ro.until("x's split-brain decision", fmt.Sprintf(`[...document.querySelectorAll('table[data-test=sides] tbody tr')].some(tr => tr.cells[0].textContent === %s)`, js(x.Name)), 20*time.Second)
	c.Partition([]int{0, 1}, []int{2})
	c.WaitPartitioned(testutil.Scale(30*time.Second), []int{0, 1}, []int{2})
	br.until("a and b see x gone, x's row did not answer", fmt.Sprintf(`[%s, %s].every(o => { const td = document.querySelector('tr[data-observer="' + o + '"] td[data-target="' + %s + '"]'); return td && (td.textContent === 'dead' || td.textContent === 'suspect'); }) && document.querySelector('tr[data-observer="' + %s + '"] [data-test=no-answer]') !== null`,
		js(a.Name), js(b.Name), js(x.Name), js(x.Name)), 30*time.Second)
	ro.until("x's side: its own decision and why, a and b did not answer", fmt.Sprintf(`(() => { const u = (document.querySelector('[data-test=unreachable]') || {textContent: ''}).textContent; const r = [...document.querySelectorAll('table[data-test=sides] tbody tr')].find(tr => tr.cells[0].textContent === %s); return u.includes(%s) && u.includes(%s) && r !== undefined && r.cells[2].textContent !== ''; })()`,
		js(x.Name), js(a.Name), js(b.Name)), 30*time.Second)
	ro.readable("registry-partition")
	ro.shot("registry-partition.png")
	c.Heal()
	c.WaitConverged(testutil.Scale(60 * time.Second))
	br.until("the matrix whole again after the heal", `document.querySelectorAll('table[data-test=matrix] td[data-target].alive').length === 9`, 60*time.Second)
	// A second tab on x itself: when x dies, that page keeps what it has.
	ro.run("open x's own dashboard", chromedp.Navigate(x.URL()+"/ui/#/cluster"))
	ro.until("x's matrix", `document.querySelectorAll('table[data-test=matrix] td[data-target].alive').length === 9`, 30*time.Second)
	ro.until("x's health history", `document.querySelectorAll('[data-history] rect').length > 0`, 30*time.Second)
	narrow("cluster")
	var marker bool
	br.eval(`window.__noReload = true`, &marker)
	_, upper := c.Profile().CrashDetection(3)
	c.Kill(2)
	br.until("x dead in the views of a and b", fmt.Sprintf(`[%s, %s].every(o => { const td = document.querySelector('tr[data-observer="' + o + '"] td[data-target="' + %s + '"]'); return td && td.textContent === 'dead'; }) && document.querySelector('tr[data-observer="' + %s + '"] [data-test=no-answer]') !== null`,
		js(a.Name), js(b.Name), js(x.Name), js(x.Name)), upper+6*time.Second)
	br.until("the feed shows x going down, with its id", fmt.Sprintf(`[...document.querySelectorAll('[data-test=events] li[data-type=node_down]')].some(li => li.dataset.id !== '' && li.textContent.includes(%s))`, js(x.Name)), 20*time.Second)
	br.eval(`window.__noReload === true`, &marker)
	if !marker {
		t.Fatal("the page reloaded")
	}
	br.readable("cluster-node-dead")
	br.shot("cluster-node-dead.png")
	br.hash("#/processes")
	br.until("the processes page names the dead node", fmt.Sprintf(`(document.querySelector('[data-test=unreachable]') || {textContent: ''}).textContent.includes(%s)`, js(x.Name)), 20*time.Second)
	// The split-brain decision of the two survivors, with why, and x named
	// as not answering.
	br.hash("#/registry")
	br.until("the registry page names the dead node and shows each survivor's decision", fmt.Sprintf(`(document.querySelector('[data-test=unreachable]') || {textContent: ''}).textContent.includes(%s) && [%s, %s].every(n => [...document.querySelectorAll('table[data-test=sides] tbody tr')].some(tr => tr.cells[0].textContent === n && tr.cells[2].textContent !== ''))`,
		js(x.Name), js(a.Name), js(b.Name)), 20*time.Second)
	ro.until("x's page says its node did not answer and keeps its data",
		`document.querySelector('main .banner') !== null && document.querySelector('main').textContent.includes('last refresh failed') && document.querySelectorAll('table[data-test=matrix] td[data-target].alive').length === 9`, 30*time.Second)
}

type info struct{ PID, Parent string }

func processInfo(t *testing.T, base, pid string) info {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/processes/" + url.PathEscape(pid) + "/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Data info }
	if resp.StatusCode != 200 {
		return info{}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r.Data
}
