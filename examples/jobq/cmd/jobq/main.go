// Command jobq runs one node of a jobq cluster (package jobq): every flag
// of an Arsenal node (--help), and the job queue.
package main

import (
	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/examples/jobq"
)

func main() { arsenal.Main(jobq.App()) }
