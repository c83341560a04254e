package v1alpha1_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const validTask = `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: t
spec:
  startOnIgnition: [ignitor1]
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
`

const validIgnitor = "apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i\nspec:\n  scheduled: \"@hourly\"\n"

// TestInvalidObjectsAreRejected applies objects that break one rule each and checks
// that the API server names the field and the reason.
func TestInvalidObjectsAreRejected(t *testing.T) {
	ns := namespace(t)
	tests := []struct {
		name     string
		manifest string
		want     []string
	}{{
		name:     "task without template",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Task\nmetadata:\n  name: t\nspec:\n  startOnIgnition: [a]\n",
		want:     []string{"spec.template: Required value"},
	}, {
		name:     "task with no container",
		manifest: strings.Replace(validTask, "      containers:\n      - name: main\n        image: busybox\n", "      containers: []\n", 1),
		want:     []string{"spec.template", "must list at least one container"},
	}, {
		name:     "restartPolicy Always",
		manifest: strings.Replace(validTask, "restartPolicy: Never", "restartPolicy: Always", 1),
		want:     []string{"spec.template", "restartPolicy must be Never"},
	}, {
		name:     "init container with a capital",
		manifest: strings.Replace(validTask, "      containers:", "      initContainers:\n      - name: Setup\n        image: busybox\n      containers:", 1),
		want:     []string{"spec.template.spec.initContainers[0].name", `"Setup" is not a valid container name`},
	}, {
		name:     "container name too long",
		manifest: strings.Replace(validTask, "name: main", "name: "+strings.Repeat("a", 64), 1),
		want:     []string{"spec.template.spec.containers[0].name", "may not be more than 63"},
	}, {
		name:     "startOnSuccess name with underscore",
		manifest: strings.Replace(validTask, "startOnIgnition: [ignitor1]", "startOnSuccess: [task_1]", 1),
		want:     []string{"spec.startOnSuccess[0]", `"task_1" is not a valid object name`},
	}, {
		name:     "startOnFailure empty name",
		manifest: strings.Replace(validTask, "startOnIgnition: [ignitor1]", `startOnFailure: [""]`, 1),
		want:     []string{"spec.startOnFailure[0]", "should be at least 1 chars long"},
	}, {
		name:     "successActions name with capitals",
		manifest: strings.Replace(validTask, "startOnIgnition: [ignitor1]", "successActions: [Notify]", 1),
		want:     []string{"spec.successActions[0]", `"Notify" is not a valid object name`},
	}, {
		name:     "ignitor with an unusable schedule",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i\nspec:\n  scheduled: tomorrow\n",
		want:     []string{"spec.scheduled", `"tomorrow" is not a schedule`},
	}, {
		name:     "ignitor with a time without zone",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i\nspec:\n  scheduled: \"2030-02-03T19:34:05\"\n",
		want:     []string{"spec.scheduled", "is not a schedule"},
	}, {
		name:     "ignitor with a 4-field cron",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i\nspec:\n  scheduled: \"5 * * *\"\n",
		want:     []string{"spec.scheduled", "is not a schedule"},
	}, {
		name:     "ignitor without schedule",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i\nspec:\n  data: x\n",
		want:     []string{"spec.scheduled: Required value"},
	}, {
		name:     "ignitor data over 64 KiB",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i\nspec:\n  scheduled: NOW\n  data: " + strings.Repeat("x", 64<<10+1) + "\n",
		want:     []string{"spec.data", "65536"},
	}, {
		name:     "ignitor data over 64 KiB in fewer characters",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i\nspec:\n  scheduled: NOW\n  data: " + strings.Repeat("é", 40000) + "\n",
		want:     []string{"spec.data", "data is over the limit of 65536 bytes", "ORCA_DATA"},
	}, {
		name:     "ignitor with an unknown catchUp",
		manifest: validIgnitor + "  catchUp: Sometimes\n",
		want:     []string{"spec.catchUp", `Unsupported value: "Sometimes"`, `"None", "Latest", "All"`},
	}, {
		name:     "ignitor with maxCatchUpRuns 0",
		manifest: validIgnitor + "  catchUp: All\n  maxCatchUpRuns: 0\n",
		want:     []string{"spec.maxCatchUpRuns", "should be greater than or equal to 1"},
	}, {
		name:     "ignitor with maxCatchUpRuns above 1000",
		manifest: validIgnitor + "  catchUp: All\n  maxCatchUpRuns: 1001\n",
		want:     []string{"spec.maxCatchUpRuns", "should be less than or equal to 1000"},
	}, {
		name:     "ignitor with maxCatchUpRuns but catchUp Latest",
		manifest: validIgnitor + "  maxCatchUpRuns: 5\n",
		want:     []string{"spec", "maxCatchUpRuns counts the missed times that catchUp: All fires"},
	}, {
		name:     "ignitor with catchUp All and no maxCatchUpRuns",
		manifest: validIgnitor + "  catchUp: All\n",
		want:     []string{"spec", "catchUp: All needs maxCatchUpRuns above 1"},
	}, {
		name:     "ignitor with startingDeadlineSeconds 0",
		manifest: validIgnitor + "  startingDeadlineSeconds: 0\n",
		want:     []string{"spec.startingDeadlineSeconds", "should be greater than or equal to 1"},
	}, {
		name:     "ignitor with a bad entry in schedules",
		manifest: validIgnitor + "  schedules: [\"@daily\", \"every day\"]\n",
		want:     []string{"spec.schedules[1]", `"every day" is not a schedule`},
	}, {
		name:     "ignitor with a schedule twice",
		manifest: validIgnitor + "  schedules: [\"@daily\", \"@daily\"]\n",
		want:     []string{"spec.schedules[1]", "Duplicate value"},
	}, {
		name:     "ignitor with eleven schedules",
		manifest: validIgnitor + "  schedules: [\"0 1 * * *\", \"0 2 * * *\", \"0 3 * * *\", \"0 4 * * *\", \"0 5 * * *\", \"0 6 * * *\", \"0 7 * * *\", \"0 8 * * *\", \"0 9 * * *\", \"0 10 * * *\", \"0 11 * * *\"]\n",
		want:     []string{"spec.schedules", "must have at most 10 items"},
	}, {
		name:     "ignitor with a time zone with a space",
		manifest: validIgnitor + "  timeZone: Europe Berlin\n",
		want:     []string{"spec.timeZone", `"Europe Berlin" is not an IANA time zone name`},
	}, {
		name:     "ignitor with the machine's time zone",
		manifest: validIgnitor + "  timeZone: Local\n",
		want:     []string{"spec.timeZone", `"Local" is not an IANA time zone name`},
	}, {
		name:     "action with no plugin",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a\nspec:\n  description: nothing\n",
		want:     []string{"spec", "exactly one plugin must be set: webhook, nats or log"},
	}, {
		name:     "action with two plugins",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a\nspec:\n  log: {}\n  nats:\n    subject: a.b\n",
		want:     []string{"spec", "exactly one plugin must be set"},
	}, {
		name:     "webhook with a relative url",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a\nspec:\n  webhook:\n    url: /hook\n",
		want:     []string{"spec.webhook.url", "absolute http:// or https:// URL"},
	}, {
		name:     "webhook header with value and valueFrom",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a\nspec:\n  webhook:\n    url: https://example.com/hook\n    headers:\n    - name: X-Token\n      value: a\n      valueFrom: {name: s, key: k}\n",
		want:     []string{"spec.webhook.headers[0]", "set exactly one of value and valueFrom"},
	}, {
		name:     "webhook timeout over 30s",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a\nspec:\n  webhook:\n    url: https://example.com/hook\n    timeout: 1m0s\n",
		want:     []string{"spec.webhook.timeout", "timeout must be more than 0s and at most 30s"},
	}, {
		name:     "webhook timeout of an hour",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a\nspec:\n  webhook:\n    url: https://example.com/hook\n    timeout: 1h\n",
		want:     []string{"spec.webhook.timeout", "at most 30s"},
	}, {
		name:     "webhook timeout of zero",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a\nspec:\n  webhook:\n    url: https://example.com/hook\n    timeout: 0s\n",
		want:     []string{"spec.webhook.timeout", "more than 0s"},
	}, {
		name:     "nats subject with a wildcard",
		manifest: "apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a\nspec:\n  nats:\n    subject: orca.>\n",
		want:     []string{"spec.nats.subject", "should match"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apply(t, ns, tt.manifest)
			require.Error(t, err, "the API server accepted an invalid object")
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestValidObjectsAreAccepted guards the rules above against rejecting what is valid.
func TestValidObjectsAreAccepted(t *testing.T) {
	ns := namespace(t)
	for _, manifest := range []string{
		validTask,
		strings.Replace(validTask, "startOnIgnition: [ignitor1]", "startOnSuccess: [t]\n  startOnFailure: [t]\n  successActions: [a.b-c]", 1),
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i1\nspec:\n  scheduled: \"2030-02-03T19:34:05Z\"\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i2\nspec:\n  scheduled: \"2030-02-03T19:34:05.5+01:00\"\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i3\nspec:\n  scheduled: \"5 * * * *\"\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i4\nspec:\n  scheduled: \"*/15 9-17 * * MON-FRI\"\n  timeZone: Europe/Rome\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i5\nspec:\n  scheduled: \"@hourly\"\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i6\nspec:\n  scheduled: \"@every 90s\"\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i7\nspec:\n  scheduled: NOW\n  data: " + strings.Repeat("x", 64<<10) + "\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i8\nspec:\n  scheduled: NOW\n  data: " + strings.Repeat("é", 32<<10) + "\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i9\nspec:\n  scheduled: \"30 2 * * *\"\n  timeZone: Europe/Berlin\n  schedules: [\"0 12 * * SAT,SUN\", \"2030-02-03T19:34:05Z\", NOW]\n  suspend: true\n  startingDeadlineSeconds: 300\n  catchUp: All\n  maxCatchUpRuns: 24\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i10\nspec:\n  scheduled: \"@daily\"\n  catchUp: None\n  timeZone: America/Argentina/Buenos_Aires\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Ignitor\nmetadata:\n  name: i11\nspec:\n  scheduled: \"@daily\"\n  catchUp: Latest\n  maxCatchUpRuns: 1\n  timeZone: Etc/GMT+5\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a1\nspec:\n  log: {}\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a2\nspec:\n  nats:\n    subject: alerts.orca\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a4\nspec:\n  webhook:\n    url: https://example.com/hook\n    timeout: 30s\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a5\nspec:\n  webhook:\n    url: https://example.com/hook\n    timeout: 1500ms\n",
		"apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: a3\nspec:\n  webhook:\n    url: https://example.com/hook\n    timeout: 5s\n    headers:\n    - name: Authorization\n      valueFrom: {name: hook-secret, key: token}\n",
	} {
		_, err := apply(t, ns, manifest)
		assert.NoError(t, err, manifest)
	}
}
