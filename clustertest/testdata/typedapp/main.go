// Command typedapp runs clustertest's test App (package typedapp).
package main

import (
	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/clustertest/internal/typedapp"
)

func main() { arsenal.Main(typedapp.App()) }
