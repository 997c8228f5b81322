package chartcheck

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDockerfile checks what the chart assumes of the image (no docker
// engine here to build it): static binaries at the paths the chart runs,
// a numeric non-root user matching the pod's runAsUser, and the Go version
// of go.mod.
func TestDockerfile(t *testing.T) {
	body, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	df := string(body)

	gomod, err := os.ReadFile("../../go.mod")
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	require.NotNil(t, goVersion, "go.mod has no go directive")
	require.Contains(t, df, "ARG GO_VERSION="+string(goVersion[1])+"\n", "Dockerfile GO_VERSION must follow go.mod's go directive")

	require.Contains(t, df, "CGO_ENABLED=0", "binaries must be static for distroless/static")
	require.Regexp(t, `go build .*\./cmd/worker .*\./cmd/eventsctl`, df)

	stages := regexp.MustCompile(`(?m)^FROM `).Split(df, -1)
	final := stages[len(stages)-1]
	require.Contains(t, final, "COPY --from=build /out/worker /out/eventsctl /usr/local/bin/")
	user := regexp.MustCompile(`(?m)^USER (\d+):(\d+)$`).FindStringSubmatch(final)
	require.NotNil(t, user, "final stage needs a numeric USER uid:gid")
	require.NotEqual(t, "0", user[1])
	require.Contains(t, final, `ENTRYPOINT ["/usr/local/bin/worker"]`)

	values, err := os.ReadFile(chartDir + "/values.yaml")
	require.NoError(t, err)
	require.Contains(t, string(values), "runAsUser: "+user[1]+"\n", "the chart's runAsUser must be the image's user")
	require.True(t, strings.HasPrefix(strings.TrimSpace(strings.Split(final, "\n")[0]), "gcr.io/distroless/static"))
}
