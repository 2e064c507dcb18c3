package lab

import (
	"bytes"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricValue returns the value of the first sample of counter, gauge or
// untyped metric name whose labels include every labels pair ("reason",
// "not_a_peer", ...) in a Prometheus text exposition, and whether there is
// one.
func MetricValue(exposition, name string, labels ...string) (float64, bool) {
	vs := metricValues(exposition, name, labels)
	if len(vs) == 0 {
		return 0, false
	}
	return vs[0], true
}

// MetricSum is MetricValue summed over every matching sample, e.g.
// vipd_adverts_sent_total over all instances.
func MetricSum(exposition, name string, labels ...string) (float64, bool) {
	vs := metricValues(exposition, name, labels)
	total := 0.0
	for _, v := range vs {
		total += v
	}
	return total, len(vs) > 0
}

func metricValues(exposition, name string, labels []string) []float64 {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(exposition))
	if err != nil {
		return nil
	}
	fam := fams[name]
	if fam == nil {
		return nil
	}
	var out []float64
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch fam.GetType() {
		case dto.MetricType_COUNTER:
			out = append(out, m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			out = append(out, m.GetGauge().GetValue())
		case dto.MetricType_UNTYPED:
			out = append(out, m.GetUntyped().GetValue())
		}
	}
	return out
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Sample is one sample of a Prometheus text exposition: a counter, gauge
// or untyped series, or a histogram's or summary's _bucket, _sum and
// _count series (and quantiles), named as in the text.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Samples parses a Prometheus text exposition with expfmt.
func Samples(exposition []byte) ([]Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(exposition))
	if err != nil {
		return nil, err
	}
	var out []Sample
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			labels := func(extra ...string) map[string]string {
				l := make(map[string]string, len(m.GetLabel())+1)
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				for i := 0; i+1 < len(extra); i += 2 {
					l[extra[i]] = extra[i+1]
				}
				return l
			}
			add := func(n string, v float64, extra ...string) {
				out = append(out, Sample{Name: n, Labels: labels(extra...), Value: v})
			}
			switch fam.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(name+"_bucket", float64(b.GetCumulativeCount()), "le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))
				}
				add(name+"_sum", h.GetSampleSum())
				add(name+"_count", float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(name, q.GetValue(), "quantile", strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64))
				}
				add(name+"_sum", s.GetSampleSum())
				add(name+"_count", float64(s.GetSampleCount()))
			}
		}
	}
	return out, nil
}
