// compose-check loads a Compose file with the Compose Specification's own Go loader
// (github.com/compose-spec/compose-go/v2, the one inside docker compose v2+), as `docker compose
// config` would, and prints the resolved project as JSON: interpolated, merged (YAML anchors and
// `<<:` keys), validated against the specification's schema, every profile's services included.
// No Docker engine is needed. test/integration/compose-spec.test.ts runs it on docker-compose.yml.
//
//	compose-check [-env-file FILE] [-os-env] docker-compose.yml
//
// Exit 0 with the JSON on stdout, or 1 with the loader's error on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	envFile := flag.String("env-file", "", "variables for interpolation, as `docker compose --env-file` reads them")
	osEnv := flag.Bool("os-env", false, "also read this process's environment (docker compose does; off by default so a run does not depend on the caller's shell)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-env-file FILE] [-os-env] COMPOSE_FILE")
		os.Exit(2)
	}
	opts := []cli.ProjectOptionsFn{cli.WithProfiles([]string{"*"}), cli.WithDiscardEnvFile}
	if *osEnv {
		opts = append(opts, cli.WithOsEnv)
	}
	if *envFile != "" {
		opts = append(opts, cli.WithEnvFiles(*envFile), cli.WithDotEnv)
	}
	options, err := cli.NewProjectOptions([]string{flag.Arg(0)}, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
	fmt.Println()
}
