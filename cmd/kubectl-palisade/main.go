// Command kubectl-palisade is Palisade's kubectl plugin (`kubectl palisade`).
// It talks to the cluster with the user's kubeconfig and RBAC, like every
// kubectl plugin; each subcommand lives in its own file.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

const usage = `Usage: kubectl palisade COMMAND [flags]

Commands:
%s
Run "kubectl palisade COMMAND --help" for a command's flags.
`

// command is one `kubectl palisade` subcommand. Each registers itself from
// its own file's init, so commands stay independent of one another.
type command struct {
	// summary is the one line the top-level usage prints.
	summary string
	// run parses the command's own flags (args exclude the command's name)
	// and runs it.
	run func(args []string, stdout io.Writer) error
}

var commands = map[string]command{}

func register(name string, c command) { commands[name] = c }

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kubectl-palisade:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, topUsage())
		return fmt.Errorf("no command given")
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprint(os.Stderr, topUsage())
		return fmt.Errorf("unknown command %q", args[0])
	}
	return c.run(args[1:], stdout)
}

func topUsage() string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "  %-12s %s\n", n, commands[n].summary)
	}
	return fmt.Sprintf(usage, b.String())
}
