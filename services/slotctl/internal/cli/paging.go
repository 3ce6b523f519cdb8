package cli

// maxPage is the largest page the services serve.
const maxPage = 1000

// collect pages through a List call until limit items (0: all) or the last
// page.
func collect[T any](limit int, list func(token string, size int32) ([]T, string, error)) ([]T, error) {
	var (
		all   []T
		token string
	)
	for {
		size := maxPage
		if limit > 0 && limit-len(all) < size {
			size = limit - len(all)
		}
		items, next, err := list(token, int32(size))
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" || (limit > 0 && len(all) >= limit) {
			if limit > 0 && len(all) > limit {
				all = all[:limit]
			}
			return all, nil
		}
		token = next
	}
}
