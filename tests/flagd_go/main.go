// Command flagd_go evaluates a flagd flag-definition file with flagd's own Go evaluator
// (github.com/open-feature/flagd/core/pkg/evaluator), so alignloop's bucketing can be checked against it.
//
// Usage: flagd_go FLAGS.json FLAG_KEY < keys.txt   (prints "key<TAB>variant" per line)
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/open-feature/flagd/core/pkg/evaluator"
	"github.com/open-feature/flagd/core/pkg/logger"
	"github.com/open-feature/flagd/core/pkg/store"
	"github.com/open-feature/flagd/core/pkg/sync"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: flagd_go FLAGS.json FLAG_KEY < keys")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	const source = "file"
	log := logger.NewLogger(nil, false)
	s, err := store.NewStore(log, []string{source})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	je := evaluator.NewJSON(log, s)
	if err := je.SetState(sync.DataSync{FlagData: string(data), Source: source}); err != nil {
		fmt.Fprintln(os.Stderr, "flag definition rejected:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	in := bufio.NewScanner(os.Stdin)
	ctx := context.Background()
	for in.Scan() {
		key := in.Text()
		_, variant, _, _, err := je.ResolveObjectValue(ctx, "", os.Args[2], map[string]any{"targetingKey": key})
		if err != nil {
			fmt.Fprintln(os.Stderr, "evaluate", key, ":", err)
			os.Exit(1)
		}
		fmt.Fprintf(out, "%s\t%s\n", key, variant)
	}
}
