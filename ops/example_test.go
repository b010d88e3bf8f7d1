package ops_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/arsenal-go/arsenal/ops"
)

// An operation is one value; registering it gives the route, the
// validation, the catalogue entry and the OpenAPI document.
func Example() {
	greet := ops.Operation{
		Name:     "system.greet",
		Category: "system",
		Summary:  "Greet someone, a few times",
		Method:   "GET",
		Path:     "/api/v1/greet/{name}",
		Params: []ops.Param{
			{Name: "name", Type: ops.TypeString, In: ops.InPath, Pattern: "^[a-z]+$"},
			{Name: "times", Type: ops.TypeInt, In: ops.InQuery, Default: 1, Min: new(1.0), Max: new(3.0)},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			greeting := strings.Repeat("hello "+req.Params.String("name")+"! ", req.Params.Int("times"))
			return &ops.Result{Data: strings.TrimSpace(greeting)}, nil
		},
		Response: "",
	}
	reg := ops.NewRegistry()
	reg.MustRegister(greet)
	srv := httptest.NewServer(reg.Handler(ops.ServerConfig{Node: "example", OpenReads: true}))
	defer srv.Close()

	c := &ops.Client{BaseURL: srv.URL}
	resp, err := c.Call(context.Background(), "system-greet", map[string]string{"name": "joe", "times": "2"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(resp.Data), resp.Meta["node"])

	_, err = c.Call(context.Background(), "system.greet", map[string]string{"name": "Joe", "times": "9"})
	fmt.Println(err)
	// Output:
	// "hello joe! hello joe!" example
	// invalid parameters for system.greet: name, times (422 validation_failed)
	//   name (path): must match ^[a-z]+$, got "Joe"
	//   times (query): must be at most 3, got 9
}
