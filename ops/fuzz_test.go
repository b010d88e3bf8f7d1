package ops

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzDecodeParams sends random path segments, query strings and bodies
// to an operation with a parameter of every type. The server must never
// panic, must answer JSON with a known status, must list the offending
// fields of every 422, and must never let a value through that breaks its
// constraints.
func FuzzDecodeParams(f *testing.F) {
	for _, s := range []struct {
		path, query, body string
	}{
		{testPID, "", ""},
		{testPID, "i=5&b=true&d=1s&li=1,2&le=up&s=abc&f=0.5&n=a@b&e=age&p=" + testPID, `{"bi":1,"bo":{"a":[1,2]},"bl":["1s"]}`},
		{"x", "i=0&i=1&zz=&=1", `{"bi":"1","":null}`},
		{testPID, "li=,,&ls=&d=-1s&f=NaN", `[1]`},
		{testPID, "s=%ff", `{"bf":1e999,"bd":5,"bp":"0.0@x"}`},
		{testPID, "a=%zz", `{`},
		{"1.0@%00", "", `{"bn":"a b","be":"nope","bl":[]}`},
	} {
		f.Add(s.path, s.query, []byte(s.body))
	}
	reg := NewRegistry()
	reg.MustRegister(sinkOp())
	h := reg.Handler(ServerConfig{Node: "fuzz", Tokens: testTokens, MaxBodyBytes: 4096})

	f.Fuzz(func(t *testing.T, path, query string, body []byte) {
		r := &http.Request{
			Method:        http.MethodPost,
			URL:           &url.URL{Path: "/api/v1/sink/" + path, RawQuery: query},
			Header:        http.Header{"Authorization": {"Bearer " + operatorToken}},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Host:          "fuzz",
			RemoteAddr:    "127.0.0.1:1",
		}
		r = r.WithContext(t.Context())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		switch w.Code {
		case 200, 400, 404, 405, 413, 422:
		case 301, 307, 308: // ServeMux cleaning the path
			return
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		var env struct {
			Data  map[string]any `json:"data"`
			Error *struct {
				Code    string       `json:"code"`
				Message string       `json:"message"`
				Details []FieldError `json:"details"`
			} `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
			t.Fatalf("status %d, answer not JSON: %v\n%s", w.Code, err, w.Body)
		}
		if w.Code != 200 {
			if env.Error == nil || env.Error.Code == "" || env.Error.Message == "" {
				t.Fatalf("error answer without code or message: %s", w.Body)
			}
		}
		if w.Code == 422 {
			if len(env.Error.Details) == 0 {
				t.Fatalf("422 without fields: %s", w.Body)
			}
			for _, d := range env.Error.Details {
				if d.Reason == "" || (d.In != InPath && d.In != InQuery && d.In != InBody) {
					t.Fatalf("bad detail %+v", d)
				}
			}
		}
		if w.Code == 200 {
			// What got through meets the constraints.
			if i, ok := env.Data["i"].(float64); !ok || i < 1 || i > 1000 {
				t.Fatalf("i = %v got through", env.Data["i"])
			}
			if li, ok := env.Data["li"].([]any); ok && len(li) > 3 {
				t.Fatalf("li = %v got through", li)
			}
			if bl, ok := env.Data["bl"].([]any); ok && len(bl) < 1 {
				t.Fatalf("bl = %v got through", bl)
			}
		}
	})
}
