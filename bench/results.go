package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one metric of one workload on both servers.
type Row struct {
	Workload string    `json:"workload"`
	Metric   string    `json:"metric"`
	Unit     string    `json:"unit"`
	Ferry    float64   `json:"ferry"`   // median
	OpenSSH  float64   `json:"openssh"` // median
	Ratio    float64   `json:"ratio"`   // ferry / OpenSSH
	Lower    bool      `json:"lower_is_better"`
	FerryAll []float64 `json:"ferry_samples"`
	SSHAll   []float64 `json:"openssh_samples"`
}

// Machine describes where the run happened.
type Machine struct {
	Date       string `json:"date"`
	Host       string `json:"host"`
	NumCPU     int    `json:"nproc"`
	CPUModel   string `json:"cpu_model"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	OpenSSH    string `json:"openssh"`
	Ferry      string `json:"ferry"`
	CPUMethod  string `json:"cpu_method"`
	MemMethod  string `json:"memory_method"`
	Runs       int    `json:"runs"`
	FileSize   int64  `json:"file_size"`
	Logins     int    `json:"logins"`
	Clients    int    `json:"login_clients"`
	Idle       int    `json:"idle_sessions"`
	RelaySize  int64  `json:"relay_size"`
	RelayDelay string `json:"relay_one_way_delay"`
}

// Results of a run.
type Results struct {
	Machine Machine `json:"machine"`
	Rows    []Row   `json:"rows"`
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

func newResults(e *Env) *Results {
	m := Machine{
		Date:       time.Now().UTC().Format(time.RFC3339),
		NumCPU:     runtime.NumCPU(),
		Go:         runtime.Version(),
		CPUMethod:  e.CPUMethod,
		MemMethod:  e.MemMethod,
		Runs:       e.opts.Runs,
		FileSize:   e.opts.FileSize,
		Logins:     e.opts.Logins,
		Clients:    e.opts.LoginClients,
		Idle:       e.opts.IdleSessions,
		RelaySize:  e.opts.RelaySize,
		RelayDelay: e.opts.RelayDelay.String(),
	}
	m.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("ssh", "-V").CombinedOutput(); err == nil {
		m.OpenSSH = firstLine(out)
	}
	if out, err := exec.Command(e.opts.Ferry, "version").CombinedOutput(); err == nil {
		m.Ferry = firstLine(out)
	}
	return &Results{Machine: m}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *Results) add(workload, metric, unit string, samples map[string][]float64, lower bool) {
	row := Row{Workload: workload, Metric: metric, Unit: unit, Lower: lower,
		FerryAll: samples["ferry"], SSHAll: samples["openssh"]}
	row.Ferry, row.OpenSSH = median(row.FerryAll), median(row.SSHAll)
	if row.OpenSSH != 0 {
		row.Ratio = row.Ferry / row.OpenSSH
	}
	r.Rows = append(r.Rows, row)
}

// WriteTable prints the results as an aligned text table.
func (r *Results) WriteTable(w io.Writer) error {
	var b bytes.Buffer
	m := r.Machine
	fmt.Fprintf(&b, "# %s  %s  %d CPUs (%s)  kernel %s\n", m.Date, m.Host, m.NumCPU, m.CPUModel, m.Kernel)
	fmt.Fprintf(&b, "# %s vs %s; median of %d runs; CPU: %s\n", m.Ferry, m.OpenSSH, m.Runs, m.CPUMethod)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "workload\tmetric\tferry\tOpenSSH\tferry/OpenSSH\t\n")
	for _, row := range r.Rows {
		better := "higher is better"
		if row.Lower {
			better = "lower is better"
		}
		if len(row.SSHAll) == 0 {
			// A ferry-only row (a setting OpenSSH here lacks).
			fmt.Fprintf(tw, "%s\t%s (%s, %s)\t%.3f\t-\t-\t\n", row.Workload, row.Metric, row.Unit, better, row.Ferry)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s (%s, %s)\t%.3f\t%.3f\t%.2f\t\n", row.Workload, row.Metric, row.Unit, better, row.Ferry, row.OpenSSH, row.Ratio)
	}
	tw.Flush()
	_, err := w.Write(b.Bytes())
	return err
}
