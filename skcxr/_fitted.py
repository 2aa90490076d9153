"""The fitted estimator inside a search or a pipeline, found one way everywhere (no heavy import)."""


def fitted_model(model, *, final_step=False):
    """The fitted model inside a search (its ``best_estimator_``, through nested searches).

    With ``final_step``, a pipeline's last step too (through nested pipelines): the estimator that makes
    the predictions.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> pipe = make_pipeline(StandardScaler(), LogisticRegression())
    >>> fitted_model(pipe) is pipe, type(fitted_model(pipe, final_step=True)).__name__
    (True, 'LogisticRegression')
    """
    while True:
        if hasattr(model, "best_estimator_"):
            model = model.best_estimator_
        elif final_step and hasattr(model, "steps"):
            model = model.steps[-1][1]
        else:
            return model
