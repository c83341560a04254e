package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat: 100 on Linux.
const clockTicks = 100

// cpuTimes is the CPU time (user and system, in seconds) used so far by each
// process that takes part: kube-apiserver, etcd, kube-controller-manager and
// Orca's processes by name, and the bench itself (with the services it runs in
// its process, the floor reactors, the observer and the kubelet stand-in).
type cpuTimes map[string]float64

// cpu reads the CPU time of the bench and of its child processes.
func cpu() cpuTimes {
	out := cpuTimes{"bench": procCPU("self")}
	self := strconv.Itoa(os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		name, fields, ok := parseStat(string(data))
		if !ok || fields[1] != self { // fields[1] is the parent's pid
			continue
		}
		out[name] += ticks(fields)
	}
	return out
}

// procCPU returns the CPU seconds of the process /proc/<pid>.
func procCPU(pid string) float64 {
	data, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	_, fields, ok := parseStat(string(data))
	if !ok {
		return 0
	}
	return ticks(fields)
}

// parseStat splits /proc/<pid>/stat: the command name (in parentheses, which it
// may itself contain), then the fields after it, from state (field 3) on.
func parseStat(s string) (string, []string, bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", nil, false
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 13 {
		return "", nil, false
	}
	return s[open+1 : end], fields, true
}

// ticks returns utime + stime (fields 14 and 15) in seconds.
func ticks(fields []string) float64 {
	u, _ := strconv.ParseFloat(fields[11], 64)
	s, _ := strconv.ParseFloat(fields[12], 64)
	return (u + s) / clockTicks
}

// since returns the CPU time used between before and c.
func (c cpuTimes) since(before cpuTimes) cpuTimes {
	out := cpuTimes{}
	for k, v := range c {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// per returns the CPU milliseconds per unit (e.g. per Pod) of each process, the
// busiest first.
func (c cpuTimes) per(n float64) string {
	keys := make([]string, 0, len(c))
	total := 0.0
	for k, v := range c {
		keys = append(keys, k)
		total += v
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c[a] != c[b] {
			if c[a] > c[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := []string{fmt.Sprintf("%.2f in all", 1000*total/n)}
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, 1000*c[k]/n))
	}
	return strings.Join(parts, ", ")
}
